// SPDX-License-Identifier: MIT
// Every CLI command, in the order `tcpscope --help` lists them. Add one line per command.
import type { Command } from '../command';
import { genTypesCommand } from './gen-types';
import { compileCommand } from './compile';
import { vmtestCommand } from './vmtest';
import { cleanupCommand } from './cleanup';
import { watchCommand } from './watch';
import { timelineCommand } from './timeline';
import { topCommand } from './top';
import { serveCommand } from './serve';
import { guardCommand } from './guard';
import { flowsCommand } from './flows';
import { connsCommand } from './conns';
import { retransCommand } from './retrans';
import { rttCommand } from './rtt';
import { resetsCommand } from './resets';
import { dropsCommand } from './drops';
import { packetsCommand } from './packets';
import { detectCommand } from './detect';

export const commands: Command[] = [
  watchCommand,
  topCommand,
  serveCommand,
  timelineCommand,
  genTypesCommand,
  compileCommand,
  vmtestCommand,
  cleanupCommand,
  guardCommand,
  flowsCommand,
  connsCommand,
  retransCommand,
  rttCommand,
  resetsCommand,
  dropsCommand,
  packetsCommand,
  detectCommand,
];
