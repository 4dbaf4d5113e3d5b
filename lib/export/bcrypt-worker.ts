// SPDX-License-Identifier: MIT
// bcrypt checks off the event loop. bcryptjs is pure JavaScript and, even "async", runs
// on the calling thread in slices of up to 100 ms: a scraper with a wrong password would
// stall detector ticks and ring reads for that long per check. One worker thread, started
// on the first check and unref'd so it never keeps a process alive, runs them instead.
import { Worker } from 'node:worker_threads';

// Plain CommonJS run by the worker: it must not depend on how this file was compiled.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

interface Reply {
  id: number;
  ok: boolean;
}

/** Compares passwords with bcrypt hashes on a worker thread; `bcryptPath` resolves bcryptjs. */
export class BcryptVerifier {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (ok: boolean) => void; reject: (e: Error) => void }>();

  constructor(private readonly bcryptPath: string) {}

  compare(password: string, hash: string): Promise<boolean> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Referenced while a check is pending, so an awaited check cannot be cut short.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, password, hash });
    });
  }

  /** Stops the worker; pending checks fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: this.bcryptPath } });
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(reply.id, (p) => p.resolve(reply.ok)));
    const fail = (e: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const id of [...this.pending.keys()]) this.settle(id, (p) => p.reject(e));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the bcrypt worker exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(id: number, how: (p: { resolve: (ok: boolean) => void; reject: (e: Error) => void }) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker?.unref();
    how(p);
  }
}
