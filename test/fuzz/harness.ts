// SPDX-License-Identifier: MIT
// Shared by the fuzz tests: run seed, iteration counts (small in the normal suite, large
// from scripts/fuzz.sh), and keeping failing inputs as regression fixtures.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'fuzz');
export const SEED = Number(process.env.FUZZ_SEED ?? 1);
/** An input taking longer than this is a hang. */
export const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 2000);

/** FUZZ_ITERATIONS_<TARGET> or FUZZ_ITERATIONS, else the normal suite's `fallback`. */
export function iterations(target: string, fallback: number): number {
  const v = process.env[`FUZZ_ITERATIONS_${target.toUpperCase()}`] ?? process.env.FUZZ_ITERATIONS;
  return v ? Number(v) : fallback;
}

/** Saves an input that failed under test/fixtures/fuzz/<target>/ when FUZZ_KEEP=1 (the script sets it). */
export function keep(target: string, ext: string, input: Uint8Array | string): string | undefined {
  if (process.env.FUZZ_KEEP !== '1') return undefined;
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const dir = path.join(FIXTURES, target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${ext}`);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Kept inputs of a target, for replay. */
export function fixtures(target: string): string[] {
  const dir = path.join(FIXTURES, target);
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => path.join(dir, f)) : [];
}

export interface Failure {
  index: number;
  error: string;
  kept?: string;
}

/**
 * Feeds `count` inputs to `run`. An error `expected` accepts is a handled rejection; any
 * other error, or an input that takes longer than HANG_MS, is a failure (kept).
 */
export function fuzz<T>(opts: {
  target: string;
  ext: string;
  count: number;
  make: (index: number) => T;
  bytes: (input: T) => Uint8Array | string;
  run: (input: T, index: number) => void;
  expected: (e: unknown) => boolean;
}): { failures: Failure[]; rejected: number; accepted: number; ms: number } {
  const failures: Failure[] = [];
  let rejected = 0;
  let accepted = 0;
  const t0 = performance.now();
  for (let i = 0; i < opts.count; i++) {
    const input = opts.make(i);
    const start = performance.now();
    let error: string | undefined;
    try {
      opts.run(input, i);
      accepted++;
    } catch (e) {
      if (opts.expected(e)) rejected++;
      else error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}`.slice(0, 600) : String(e);
    }
    const took = performance.now() - start;
    if (!error && took > HANG_MS) error = `took ${Math.round(took)} ms`;
    if (error && failures.length < 20) {
      const f: Failure = { index: i, error };
      const kept = keep(opts.target, opts.ext, opts.bytes(input));
      if (kept) f.kept = kept;
      failures.push(f);
    }
  }
  return { failures, rejected, accepted, ms: performance.now() - t0 };
}

/** One line per fuzz run for the script's summary (FUZZ_REPORT=file). */
export function report(target: string, r: { failures: Failure[]; rejected: number; accepted: number; ms: number }, inputs: number): void {
  const line = `${target}: ${inputs} inputs, ${r.accepted} accepted, ${r.rejected} rejected with a typed error, ${r.failures.length} failures, ${(r.ms / 1000).toFixed(1)} s (seed ${SEED})`;
  if (process.env.FUZZ_REPORT) fs.appendFileSync(process.env.FUZZ_REPORT, line + '\n');
}
