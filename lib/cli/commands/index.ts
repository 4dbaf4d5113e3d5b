// Every CLI command, in the order `tcpscope --help` lists them. Add one line per command.
import type { Command } from '../command';
import { genTypesCommand } from './gen-types';
import { cleanupCommand } from './cleanup';

export const commands: Command[] = [
  genTypesCommand,
  cleanupCommand,
];
