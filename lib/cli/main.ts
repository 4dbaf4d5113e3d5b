#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// tcpscope command line: `tcpscope COMMAND [options]`. Exit codes: 0 ok, 1 failure, 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../bpf/paths';
import { commands } from './commands';
import { Command, CommandContext, didYouMean, parseCommandArgs, parseCount, parseDuration } from './command';
import { EXIT_RUNTIME, EXIT_USAGE, debugEnabled, describeFailure, failureDetail } from './failure';
import { bashCompletion, commandHelp, manPage, zshCompletion } from './help';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'tcpscope: inspect incoming TCP traffic with eBPF',
    '',
    'usage: tcpscope COMMAND [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Streaming commands take --json (NDJSON), -c N (stop after N events) and --duration (e.g. 10s);',
    'once attached they print a readiness line on stderr ("listening on ..." or "tracing ...").',
    'Run `tcpscope help COMMAND` (or COMMAND --help) for a command\'s options and examples;',
    '`tcpscope man` prints the man page, `tcpscope completion bash|zsh` shell completion.',
  ].join('\n');
}

function versionText(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** `help CMD`, `completion bash|zsh`, `man`: generated from the option tables. */
function meta(name: string, rest: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): number | undefined {
  if (name === 'help' && rest[0]) {
    const command = findCommand(rest[0], io);
    if (!command) return EXIT_USAGE;
    io.out.write(`${commandHelp(command)}\n`);
    return 0;
  }
  if (name === 'completion') {
    if (rest[0] === 'bash') io.out.write(bashCompletion(commands));
    else if (rest[0] === 'zsh') io.out.write(zshCompletion(commands));
    else { io.err.write(`tcpscope completion: name a shell: bash or zsh (e.g. source <(tcpscope completion bash))\n`); return 2; }
    return 0;
  }
  if (name === 'man') {
    io.out.write(manPage(commands, versionText()));
    return 0;
  }
  return undefined;
}

function findCommand(name: string, io: { err: NodeJS.WritableStream }): Command | undefined {
  const command = commands.find((c) => c.name === name);
  if (command) return command;
  const guess = didYouMean(name, [...commands.map((c) => c.name), 'help', 'completion', 'man']);
  io.err.write(`tcpscope: unknown command '${name}'${guess ? ` (did you mean '${guess}'?)` : ''} (run 'tcpscope --help' for the list of commands)\n`);
  return undefined;
}

export async function main(argv: string[], io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || (name === 'help' && !rest.length)) {
    io.out.write(`${help()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    io.out.write(`${versionText()}\n`);
    return 0;
  }
  const handled = meta(name, rest, io);
  if (handled !== undefined) return handled;
  const command = findCommand(name, io);
  if (!command) return EXIT_USAGE;
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
    const { values, positionals, warnings } = parseCommandArgs(command, rest);
    if (values['help']) {
      io.out.write(`${commandHelp(command)}\n`);
      return 0;
    }
    for (const w of warnings) io.err.write(`tcpscope ${name}: warning: ${w}\n`);
    // Checked before anything is attached; the clock starts once the command is ready.
    const durationMs = typeof values['duration'] === 'string' ? parseDuration(values['duration']) : undefined;
    if (typeof values['count'] === 'string') parseCount(values['count']);
    const ctx: CommandContext = {
      values, positionals, signal: controller.signal, stop: () => controller.abort(), out: io.out, err: io.err,
      ready(line: string) {
        io.err.write(`${line}\n`);
        if (durationMs !== undefined && !timer && !controller.signal.aborted) timer = setTimeout(() => controller.abort(), durationMs);
      },
    };
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
