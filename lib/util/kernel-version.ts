// SPDX-License-Identifier: MIT
import os from 'node:os';

/** The running kernel's major.minor, from its release string (e.g. 6.1.0-56-amd64 -> [6, 1]). */
export function kernelVersion(release: string = os.release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** True when the running kernel is at least major.minor. */
export function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = kernelVersion();
  return a > major || (a === major && b >= minor);
}
