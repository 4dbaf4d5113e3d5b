#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// tcpscope command line: `tcpscope COMMAND [options]`. Exit codes: 0 ok, 1 failure, 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { BpfError, BpfPermissionError, NotFoundError } from '../bpf/errors';
import { packageRoot } from '../bpf/paths';
import { commands } from './commands';
import { Command, CommandContext, UsageError, parseCommandArgs, parseDuration } from './command';
import { MissingPackageError } from '../util/optional';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'tcpscope: inspect incoming TCP traffic with eBPF',
    '',
    'usage: tcpscope COMMAND [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Streaming commands take --json (NDJSON), -c N (stop after N events) and -d/--duration (e.g. 10s).',
    'Run `tcpscope COMMAND --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out.write(`${help()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    io.out.write(`${manifest.version}\n`);
    return 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    io.err.write(`tcpscope: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  // A closed pipe (`tcpscope ... | head`) ends the command cleanly, detaching everything.
  const onPipeError = (e: NodeJS.ErrnoException): void => { if (e.code === 'EPIPE') controller.abort(); };
  (io.out as NodeJS.WriteStream).on?.('error', onPipeError);
  let timer: NodeJS.Timeout | undefined;
  try {
    const { values, positionals } = parseCommandArgs(command, rest);
    if (values['help']) {
      io.out.write(`usage: tcpscope ${command.name} ${command.usage}\n${command.summary}\n`);
      return 0;
    }
    if (typeof values['duration'] === 'string') timer = setTimeout(() => controller.abort(), parseDuration(values['duration']));
    const ctx: CommandContext = { values, positionals, signal: controller.signal, stop: () => controller.abort(), out: io.out, err: io.err };
    return await command.run(ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err.write(`tcpscope ${name}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof BpfPermissionError || e instanceof BpfError || e instanceof NotFoundError || e instanceof TypeError || e instanceof MissingPackageError) {
      io.err.write(`tcpscope ${name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGHUP', onSignal);
    (io.out as NodeJS.WriteStream).removeListener?.('error', onPipeError);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => { console.error(e); process.exitCode = 1; },
  );
}
