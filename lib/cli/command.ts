// SPDX-License-Identifier: MIT
// What every CLI command provides, and the pieces they share: option parsing, stop
// conditions (Ctrl-C, -c N, --duration) and output (text or NDJSON).
import { parseArgs, ParseArgsConfig } from 'node:util';
import { DURATION_HINT, parseDuration as parseDurationMs } from '../util/duration';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** Aborted by SIGINT/SIGTERM, --duration, or when -c N events were printed. */
  signal: AbortSignal;
  /** Stops the command (e.g. when -c N is reached). */
  stop(): void;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage text after `tcpscope NAME`. */
  usage: string;
  options: OptionSpec;
  /** Allows a filter expression or other free words after the options. */
  allowPositionals?: boolean;
  /** Returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** Options most streaming commands take. */
export const STREAM_OPTIONS: OptionSpec = {
  json: { type: 'boolean', default: false },
  count: { type: 'string', short: 'c' },
  duration: { type: 'string', short: 'd' },
};

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses `10s`, `500ms`, `2m`, `1h` or a bare number of seconds into ms. */
export function parseDuration(text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new UsageError(`bad duration '${text}': ${DURATION_HINT}`);
  return ms;
}

export function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`bad count '${text}': expected a positive integer`);
  return Number(text);
}

export function parseCommandArgs(command: Command, argv: string[]): { values: CommandContext['values']; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: command.allowPositionals ?? false, strict: true });
    return { values: values as CommandContext['values'], positionals };
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nusage: tcpscope ${command.name} ${command.usage}`);
  }
}

/** Writes one event: NDJSON when --json (bigints as numbers or strings), else text. */
export function writeEvent(ctx: CommandContext, event: object, text: () => string): void {
  if (ctx.values['json']) ctx.out.write(`${toJson(event)}\n`);
  else ctx.out.write(`${text()}\n`);
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    return v;
  });
}

/**
 * Counts events toward -c N: returns false once the limit is reached and the command should
 * stop taking more.
 */
export function counter(ctx: CommandContext): () => boolean {
  const limit = parseCount(ctx.values['count'] as string | undefined);
  let seen = 0;
  return () => {
    seen++;
    if (limit !== undefined && seen >= limit) {
      ctx.stop();
      return false;
    }
    return true;
  };
}

/** Prints the summary line every streaming command ends with (to stderr, so NDJSON stays clean). */
export function printSummary(ctx: CommandContext, stats: { received: number; lost: number }, what = 'events'): void {
  ctx.err.write(`${stats.received} ${what} received, ${stats.lost} lost\n`);
}
