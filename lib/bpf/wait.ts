// SPDX-License-Identifier: MIT
import { native } from './native';
import type { NativeFdWatcher } from './native';

/**
 * Resolves when an fd becomes readable, a timeout passes, or wake() is called: the reader
 * sleeps in libuv's epoll, never polls. The timeout bounds latency for producers that
 * submit without waking the reader; it is the watcher's own native timer (see FdWatcher in
 * native/misc.cc), not a setTimeout.
 */
export class ReadableWaiter {
  private readonly watcher: NativeFdWatcher;
  private pending: (() => void) | undefined;
  private closed = false;

  constructor(fd: number) {
    // The watcher stops itself before calling back.
    this.watcher = new (native().FdWatcher)(fd, () => this.resolvePending());
  }

  private resolvePending(): void {
    const resolve = this.pending;
    this.pending = undefined;
    resolve?.();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.pending = resolve;
      this.watcher.start(timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : undefined);
    });
  }

  /** Wakes a pending wait() at once (used by close()). */
  wake(): void {
    if (!this.closed) this.watcher.stop();
    this.resolvePending();
  }

  close(): void {
    if (this.closed) return;
    this.wake();
    this.closed = true;
    this.watcher.close();
  }
}
