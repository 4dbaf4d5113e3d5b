#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// tcpscope command line: `tcpscope COMMAND [options]`. Exit codes: 0 ok, 1 failure, 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../bpf/paths';
import { commands } from './commands';
import { Command, CommandContext, parseCommandArgs, parseDuration } from './command';
import { EXIT_RUNTIME, EXIT_USAGE, debugEnabled, describeFailure, failureDetail } from './failure';

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
    io.err.write(`tcpscope: unknown command '${name}' (run 'tcpscope --help' for the list of commands)\n`);
    return EXIT_USAGE;
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
    return reportFailure(e, name, io.err);
  } finally {
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGHUP', onSignal);
    (io.out as NodeJS.WriteStream).removeListener?.('error', onPipeError);
  }
}

/** Writes the one-line report of a failure (and, with TCPSCOPE_DEBUG=1, its detail); returns the exit code. */
function reportFailure(e: unknown, command: string | undefined, err: NodeJS.WritableStream): number {
  const failure = describeFailure(e, command ?? 'COMMAND');
  err.write(`tcpscope${command ? ` ${command}` : ''}: ${failure.line}\n`);
  if (debugEnabled()) err.write(`${failureDetail(e)}\n`);
  return failure.exitCode;
}

if (require.main === module) {
  const command = process.argv[2];
  // An error escaping the command's own handling (an event handler, a stray promise) is
  // still reported in one line; the exit then is immediate, as Node's own would be.
  const fatal = (e: unknown): void => {
    process.exitCode = reportFailure(e, command, process.stderr);
    process.exit();
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => { process.exitCode = reportFailure(e, command, process.stderr) || EXIT_RUNTIME; },
  );
}
