// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import path from 'node:path';
import { ReadableWaiter } from './wait';
import { ensureTracefs } from './sys';

export interface TraceLine {
  /** The whole line as the kernel printed it. */
  line: string;
  /** Task name and pid, CPU, timestamp (s) and the bpf_printk message, when the line parses. */
  task?: string;
  pid?: number;
  cpu?: number;
  timestamp?: number;
  message?: string;
}

const LINE = /^\s*(.+)-(\d+)\s+\[(\d+)\]\s+\S*\s+([\d.]+):\s+(?:bpf_trace_printk:\s)?(.*)$/;

/**
 * bpf_printk output from the kernel trace pipe, as an async iterator. The pipe is shared
 * by the whole machine: lines of other programs appear too.
 *
 * @example
 * for await (const { message } of tracePipe({ signal })) console.log(message);
 */
export async function* tracePipe(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<TraceLine> {
  const pipe = path.join(ensureTracefs(), 'trace_pipe');
  const fd = fs.openSync(pipe, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const waiter = new ReadableWaiter(fd);
  const onAbort = (): void => waiter.wake();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const chunk = Buffer.alloc(64 * 1024);
  let rest = '';
  try {
    while (!options.signal?.aborted) {
      let n = 0;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      }
      if (n === 0) {
        await waiter.wait(1000);
        continue;
      }
      const text = rest + chunk.toString('utf8', 0, n);
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        const m = LINE.exec(line);
        yield m
          ? { line, task: m[1]!.trim(), pid: Number(m[2]), cpu: Number(m[3]), timestamp: Number(m[4]), message: m[5]! }
          : { line };
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    waiter.close();
    fs.closeSync(fd);
  }
}
