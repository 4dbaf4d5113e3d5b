// SPDX-License-Identifier: MIT
// The kernel stamps events with CLOCK_MONOTONIC (bpf_ktime_get_ns); people read wall-clock
// times. One offset between the two, read now.

/** Wall-clock ns since the epoch minus CLOCK_MONOTONIC ns (process.hrtime), now. */
export function wallClockOffsetNs(): bigint {
  const wall = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  return wall - process.hrtime.bigint();
}

/** CLOCK_MONOTONIC ns (bpf_ktime_get_ns) to a Date. */
export function monoToDate(ns: bigint): Date {
  return new Date(Number((ns + wallClockOffsetNs()) / 1_000_000n));
}
