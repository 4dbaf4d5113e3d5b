// SPDX-License-Identifier: MIT
// This process's threads, from /proc: to wait until a native thread a test started is
// parked in its wait, rather than sleeping and hoping it got there.
import fs from 'node:fs';
import { eventually } from './bpf';

/** The ids of this process's threads now. */
export function threadIds(): Set<number> {
  return new Set(fs.readdirSync('/proc/self/task').map(Number));
}

/** Resolves once a thread that was not in `before` is asleep (state S), i.e. blocked in a wait. */
export async function newThreadAsleep(before: Set<number>, ms = 5000): Promise<void> {
  await eventually(() => [...threadIds()].some((tid) => {
    if (before.has(tid)) return false;
    try {
      // The state follows the parenthesised name, which may itself hold spaces or ')'.
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'S';
    } catch {
      return false; // it ended meanwhile
    }
  }), ms, 'a new thread blocked in its wait');
}

// poll(2) and ppoll(2) by architecture: glibc's poll() is poll on x86-64, ppoll on arm64.
const POLL_SYSCALLS: Partial<Record<string, readonly number[]>> = { x64: [7, 271], arm64: [73] };

/** Whether a thread of this process is blocked in poll(2) or ppoll(2), e.g. on a full pipe. */
export function threadInPoll(): boolean {
  const numbers = POLL_SYSCALLS[process.arch];
  if (!numbers) throw new Error(`threadInPoll: no poll syscall numbers for ${process.arch}`);
  return [...threadIds()].some((tid) => {
    try {
      return numbers.includes(Number(fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ')[0]));
    } catch {
      return false; // it ended meanwhile
    }
  });
}
