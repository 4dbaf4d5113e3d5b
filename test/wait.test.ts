// SPDX-License-Identifier: MIT
// The fd waiter every reader sleeps in: one native watcher per reader, armed once per wait,
// woken by the fd, its own timer or wake(), and never left armed after calling back (a
// level-triggered fd that stays readable would otherwise spin the event loop).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../lib/bpf/native';
import { ReadableWaiter } from '../lib/bpf/wait';

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('ReadableWaiter', () => {
  let dir: string;
  let fd: number;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-wait-'));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // O_RDWR: a FIFO opened so needs no other end, and turns readable on our own write.
    fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  });
  afterEach(() => {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resolves on its timeout when the fd stays quiet, not before', async () => {
    const waiter = new ReadableWaiter(fd);
    const start = performance.now();
    await waiter.wait(30);
    // libuv counts from the loop's cached time, which may be a millisecond or two older than
    // this start: a timeout that fired for the fd would come at once, not near 30 ms.
    expect(performance.now() - start).toBeGreaterThanOrEqual(25);
    waiter.close();
  });

  it('resolves when the fd turns readable, long before its timeout', async () => {
    const waiter = new ReadableWaiter(fd);
    let timedOut = false;
    const guard = setTimeout(() => { timedOut = true; }, 20_000);
    const waiting = waiter.wait(60_000);
    fs.writeSync(fd, 'x');
    await waiting;
    clearTimeout(guard);
    expect(timedOut).toBe(false);
    waiter.close();
  });

  it('wake() and close() end a wait at once; a closed waiter resolves at once', async () => {
    const waiter = new ReadableWaiter(fd);
    const first = waiter.wait(60_000);
    waiter.wake();
    await first;
    const second = waiter.wait(60_000);
    waiter.close();
    await second;
    await waiter.wait(60_000);
  });

  it('calls back once per arming, with the cause, and stays disarmed while the fd stays readable', async () => {
    const calls: number[] = [];
    const watcher = new (native().FdWatcher)(fd, (status) => calls.push(status));
    watcher.start(10);
    while (calls.length === 0) await turns(1);
    expect(calls).toEqual([1]);
    fs.writeSync(fd, 'x');
    watcher.start(60_000);
    while (calls.length === 1) await turns(1);
    expect(calls).toEqual([1, 0]);
    // The byte is still unread: an armed level-triggered poll would fire on every turn.
    await turns(50);
    expect(calls).toEqual([1, 0]);
    // stop() disarms the timer too.
    watcher.start(5);
    watcher.stop();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(calls).toEqual([1, 0]);
    watcher.close();
  });
});
