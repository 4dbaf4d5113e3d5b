#!/usr/bin/env node
// tcpscope command line: `tcpscope COMMAND [options]`. Exit codes: 0 ok, 1 failure, 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { BpfError, BpfPermissionError, NotFoundError } from '../bpf/errors';
import { packageRoot } from '../bpf/paths';
import { commands } from './commands';
import { Command, CommandContext, UsageError, didYouMean, parseCommandArgs, parseCount, parseDuration } from './command';
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
    if (!command) return 2;
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
  io.err.write(`tcpscope: unknown command '${name}'${guess ? ` (did you mean '${guess}'?)` : ''}\n\n${help()}\n`);
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
  if (!command) return 2;
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
    if (e instanceof UsageError) {
      io.err.write(`tcpscope ${name}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof BpfPermissionError || e instanceof BpfError || e instanceof NotFoundError || e instanceof TypeError) {
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
