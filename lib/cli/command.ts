// SPDX-License-Identifier: MIT
// What every CLI command provides, and the pieces they share: option definitions (parsed,
// documented in --help, the man page and shell completion from the same table), stop
// conditions (Ctrl-C, -c N, --duration) and output (text or NDJSON).
import { DURATION_HINT, parseDuration as parseDurationMs } from '../util/duration';

/** One command-line option. */
export interface OptionDef {
  type: 'string' | 'boolean';
  /** One-letter spelling, e.g. 'c' for -c. */
  short?: string;
  /** May be given several times (values collected in order). */
  multiple?: boolean;
  default?: string | boolean;
  /** Placeholder for the value in help text: N, IFACE, DURATION... */
  arg?: string;
  /** What it does, one sentence, for --help and the man page. */
  help?: string;
  /** Values shell completion offers. */
  choices?: readonly string[];
  /** Counted (-v, -vv): the value is how often it was given, as a string. */
  counted?: boolean;
}

export type OptionSpec = Record<string, OptionDef>;

/**
 * An old spelling kept for one version: it still works, with a warning on stderr.
 * `when` (optional) decides from the next argument whether the old meaning applies.
 */
export interface DeprecatedAlias {
  /** '-d', '-p', '-r', '-i' */
  spelling: string;
  /** The option it stands for (long name). */
  option: string;
  warning: string;
  when?: (next: string | undefined) => boolean;
}

export interface CommandContext {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** Aborted by SIGINT/SIGTERM, --duration, or when -c N events were printed. */
  signal: AbortSignal;
  /** Stops the command (e.g. when -c N is reached). */
  stop(): void;
  /**
   * Says the command is attached and capturing: prints `line` on stderr (the readiness line
   * scripts and tests wait on, in --json mode too) and starts the --duration clock, so time
   * spent loading programs does not count.
   */
  ready(line: string): void;
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
  /** What the positional words are, for help (e.g. 'filter expression'). */
  positionalsHelp?: string;
  /** Longer description for --help and the man page. */
  description?: string;
  /** Command lines with what they do, for --help and the man page. */
  examples?: ReadonlyArray<readonly [string, string]>;
  /** Old spellings still accepted with a warning. */
  deprecated?: readonly DeprecatedAlias[];
  /** Returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** Options most streaming commands take. */
export const STREAM_OPTIONS: OptionSpec = {
  json: { type: 'boolean', default: false, help: 'one JSON object per line (NDJSON) instead of text' },
  count: { type: 'string', short: 'c', arg: 'N', help: 'stop after N events' },
  duration: { type: 'string', arg: 'DURATION', help: 'stop after this long once attached (500ms, 10s, 2m, 1h)' },
};


/** `-d` meant --duration before; it stays one version, with a warning. */
export const DEPRECATED_D: DeprecatedAlias = {
  spelling: '-d',
  option: 'duration',
  warning: '-d DURATION is deprecated: use --duration (-d will dump the compiled filter, as tcpdump -d does)',
};

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses `10s`, `500ms`, `2m`, `1h` or a bare number of seconds into ms. */
export function parseDuration(text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new UsageError(`bad duration '${text}': ${DURATION_HINT}`);
  if (!(ms > 0) || ms > 2 ** 31 - 1) throw new UsageError(`bad duration '${text}': must be more than 0 and at most 24 days`);
  return ms;
}

/** True when `text` reads as a duration (for telling -d DURATION from -d). */
export function looksLikeDuration(text: string | undefined): boolean {
  return text !== undefined && parseDurationMs(text) !== undefined;
}

export function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new UsageError(`bad count '${text}': expected a positive integer (e.g. -c 10)`);
  return Number(text);
}

/** Edit distance, for did-you-mean. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest of `candidates` to `word`, when close enough to be a likely typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : editDistance(word, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Options every command takes. */
export const HELP_OPTION: OptionSpec = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

export function allOptions(command: Command): OptionSpec {
  return { ...command.options, ...HELP_OPTION };
}

export interface ParsedArgs {
  values: CommandContext['values'];
  positionals: string[];
  /** Warnings for deprecated spellings used. */
  warnings: string[];
}

/**
 * getopt-style parsing, as tcpdump and bcc tools do it: an option that takes a value takes
 * the next word whatever it looks like (`-c -1` is a bad count, not an ambiguity), short
 * options bundle (`-nn`, `-46`, `-c5`), `--name=value`, and `--` ends the options. Unknown
 * options name the closest known one.
 */
export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options = allOptions(command);
  const byShort = new Map<string, string>();
  for (const [name, def] of Object.entries(options)) if (def.short) byShort.set(def.short, name);
  const values: Record<string, string | boolean | string[] | undefined> = {};
  const positionals: string[] = [];
  const warnings: string[] = [];
  // One line naming the problem; the CLI's failure report adds where to look
  // ("run 'tcpscope CMD --help' for its options"), not a usage dump.
  const fail = (message: string): never => { throw new UsageError(message); };
  const set = (name: string, value: string | boolean, shown: string): void => {
    const def = options[name]!;
    if (def.counted) {
      values[name] = String(Number(values[name] ?? 0) + 1);
    } else if (def.multiple) {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(value as string);
      values[name] = list;
    } else {
      if (def.type === 'string' && values[name] !== undefined && values[name] !== value) fail(`${shown} given twice ('${String(values[name])}' and '${String(value)}')`);
      values[name] = value;
    }
  };
  const longNames = Object.keys(options).map((n) => `--${n}`);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break; }
    const alias = command.deprecated?.find((d) => d.spelling === arg && (!d.when || d.when(argv[i + 1])));
    if (alias) {
      const def = options[alias.option]!;
      warnings.push(alias.warning);
      if (def.type === 'boolean') { set(alias.option, true, arg); continue; }
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      set(alias.option, argv[++i]!, arg);
      continue;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const def = Object.hasOwn(options, name) ? options[name] : undefined;
      if (!def) {
        const guess = didYouMean(`--${name}`, longNames);
        fail(`unknown option '--${name}'${guess ? ` (did you mean ${guess}?)` : ''}`);
        continue;
      }
      if (def.type === 'boolean') {
        if (eq >= 0) fail(`--${name} takes no value`);
        set(name, true, `--${name}`);
      } else if (eq >= 0) {
        set(name, arg.slice(eq + 1), `--${name}`);
      } else {
        if (i + 1 >= argv.length) fail(`--${name} needs a value${def.arg ? ` (${def.arg})` : ''}`);
        set(name, argv[++i]!, `--${name}`);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let k = 1; k < arg.length; k++) {
        const letter = arg[k]!;
        const name = byShort.get(letter);
        if (!name) {
          const guess = didYouMean(`-${letter}`, [...byShort.keys()].map((l) => `-${l}`));
          fail(`unknown option '-${letter}'${arg.length > 2 ? ` in '${arg}'` : ''}${guess && guess !== `-${letter}` ? ` (did you mean ${guess}?)` : ''}`);
          break;
        }
        const def = options[name]!;
        if (def.type === 'boolean') { set(name, true, `-${letter}`); continue; }
        const rest = arg.slice(k + 1);
        if (rest) set(name, rest, `-${letter}`);
        else if (i + 1 < argv.length) set(name, argv[++i]!, `-${letter}`);
        else fail(`-${letter} needs a value${def.arg ? ` (${def.arg})` : ''}`);
        break;
      }
      continue;
    }
    if (!command.allowPositionals) fail(`unexpected argument '${arg}'`);
    positionals.push(arg);
  }
  for (const [name, def] of Object.entries(options)) if (values[name] === undefined && def.default !== undefined) values[name] = def.default;
  return { values, positionals, warnings };
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
