// SPDX-License-Identifier: MIT
import { native } from './native';
import type { NativeFdWatcher } from './native';

/**
 * Resolves when an fd becomes readable, a timeout passes, or wake() is called: the reader
 * sleeps in libuv's epoll, never polls. The timeout bounds latency for producers that
 * submit without waking the reader.
 */
export class ReadableWaiter {
  private readonly watcher: NativeFdWatcher;
  private pending: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(fd: number) {
    this.watcher = new (native().FdWatcher)(fd, () => this.settle());
  }

  private settle(): void {
    const resolve = this.pending;
    this.pending = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.closed) this.watcher.stop();
    resolve?.();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.pending = resolve;
      this.watcher.start();
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) this.timer = setTimeout(() => this.settle(), timeoutMs);
    });
  }

  /** Wakes a pending wait() at once (used by close()). */
  wake(): void {
    this.settle();
  }

  close(): void {
    if (this.closed) return;
    this.settle();
    this.closed = true;
    this.watcher.close();
  }
}
