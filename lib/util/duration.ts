// SPDX-License-Identifier: MIT

/** The form parseDuration accepts, for error messages. */
export const DURATION_HINT = 'use e.g. 500ms, 10s, 2m, 1h';

/** Parses `10s`, `500ms`, `2m`, `1h` or a bare number of seconds into ms; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
}
