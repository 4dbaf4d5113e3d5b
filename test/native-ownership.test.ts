// SPDX-License-Identifier: MIT
// Native ownership: no fd survives a failure, links detach through fds they own, the
// clsact registry holds up under worker threads, and test runs copy their input before
// user code can run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BpfObject } from '../lib/bpf/object';
import { BpfMap, MapType } from '../lib/bpf/map';
import { BpfError } from '../lib/bpf/errors';
import { native } from '../lib/bpf/native';
import { u32 } from '../lib/bpf/codec';
import { bpfAvailable, objectPath, ROOT } from './helpers/bpf';
import { createTestNet, TestNet } from './helpers/netns';

const enabled = bpfAvailable('native ownership');
// Open fds, without the one readdir itself used (closed by the time we look).
const fds = (): string[] =>
  fs
    .readdirSync('/proc/self/fd')
    .filter((fd) => fs.existsSync(`/proc/self/fd/${fd}`))
    .sort((a, b) => Number(a) - Number(b));
const pin = `/sys/fs/bpf/tcps-own-${process.pid}`;

function fails(fn: () => unknown): void {
  let threw = false;
  try {
    fn();
  } catch {
    threw = true;
  }
  expect(threw).toBe(true);
}

describe.skipIf(!enabled)('native ownership', () => {
  let tn: TestNet;
  beforeAll(() => {
    tn = createTestNet();
  });
  afterAll(() => {
    try { fs.rmSync(`${pin}-prog`); } catch { /* not pinned */ }
    tn?.destroy();
  });

  it('leaks no fd across failures of openPinned, create, open, load, attach and test runs', () => {
    using obj = BpfObject.load(objectPath('rt_attach'));
    native().objPin(obj.program('xdp_count_syn').fd, `${pin}-prog`);
    const image = fs.readFileSync(objectPath('rt_attach'));
    const broken = Buffer.from(image);
    broken.writeUInt32LE(0xffffffff, 0x28); // section headers far past the end
    const notSocket = fs.openSync(path.join(ROOT, 'package.json'), 'r');
    const failures: Array<() => unknown> = [
      () => BpfMap.openPinned(`${pin}-missing`),
      () => BpfMap.openPinned(`${pin}-prog`), // a program, not a map
      () => BpfMap.create({ type: MapType.HASH, name: 'bad', keySize: 0, valueSize: 4, maxEntries: 1 }),
      () => BpfMap.create({ type: MapType.ARRAY, name: 'codec', keySize: 4, valueSize: 8, maxEntries: 1 }, { value: u32 }),
      () => BpfObject.open(broken),
      () => BpfObject.open(image.subarray(0, 4000)),
      () => obj.program('socket_count').attachSocket(notSocket),
      () => obj.program('socket_count').attachSocket(99_999),
      () => obj.program('xdp_count_syn').attachXdp(999_999, { netlink: true }),
      () => obj.program('tc_count_syn').attachTc(999_999, { mechanism: 'clsact' }),
      () => obj.program('xdp_count_syn').testRun({ data: new Uint8Array(2) }),
    ];
    for (const f of failures) fails(f); // warm-up: lazily opened files (bpffs checks, BTF)
    const before = fds();
    for (let i = 0; i < 100; i++) for (const f of failures) fails(f);
    for (let i = 0; i < 20; i++) fails(() => BpfObject.load(objectPath('rt_bad')));
    fs.closeSync(notSocket);
    const after = fds().filter((fd) => fd !== String(notSocket));
    const name = (fd: string): string => { try { return `${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`; } catch { return `${fd} (closed)`; } };
    expect(after.map(name)).toEqual(before.filter((fd) => fd !== String(notSocket)).map(name));
    // The refusal of a pinned program says what it is.
    expect(() => BpfMap.openPinned(`${pin}-prog`)).toThrow(/is a prog, not a map/);
  });

  it('a socket filter link detaches through its own fd, not a number the user closed and reused', async () => {
    using obj = BpfObject.load(objectPath('rt_attach'));
    const server = net.createServer((s) => s.on('data', (d) => s.write(d)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    try {
      const first = net.connect({ port, host: '127.0.0.1' });
      await once(first, 'connect');
      const count = fds().length;
      const link1 = obj.program('socket_count').attachSocket(first);
      expect(fds().length).toBe(count + 1); // the link's own dup
      first.destroy();
      await once(first, 'close');
      const second = net.connect({ port, host: '127.0.0.1' });
      await once(second, 'connect');
      const link2 = obj.program('socket_count').attachSocket(second);
      // Detaching the first link must leave the second socket's filter alone, whichever
      // fd number the second socket got.
      link1.detach();
      const start = obj.global<bigint>('socket_filter_bytes');
      second.write(Buffer.alloc(3000, 1));
      let got = 0;
      for await (const chunk of second) {
        got += (chunk as Buffer).length;
        if (got >= 3000) break;
      }
      expect(obj.global<bigint>('socket_filter_bytes') - start).toBeGreaterThanOrEqual(3000n);
      link2.detach();
      expect(fds().length).toBeLessThanOrEqual(count);
      second.destroy();
    } finally {
      server.close();
    }
  });

  it('netlink XDP links hold their own program fd and namespace, released on detach', () => {
    using obj = BpfObject.load(objectPath('rt_attach'));
    const before = fds();
    const link = obj.program('xdp_count_syn').attachXdp(tn.hostIf, { netlink: true, mode: 'skb' });
    // Its own dup of the program fd, and its network namespace (to detach from where it attached).
    const added = fds()
      .filter((fd) => !before.includes(fd))
      .map((fd) => fs.readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]$/, ''))
      .sort();
    expect(added).toEqual(['anon_inode:bpf-prog', 'net:']);
    const count = before.length;
    expect(link.kind).toBe('xdp');
    link.detach();
    expect(fds().length).toBe(count);
    expect(execFileSync('ip', ['link', 'show', tn.hostIf], { encoding: 'utf8' })).not.toMatch(/xdp/);
  });

  it('clsact users from worker threads and the main thread share one registry', async () => {
    const rounds = 25;
    const script = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { BpfObject } = require(${JSON.stringify(path.join(ROOT, 'dist/lib/bpf/object.js'))});
      const obj = BpfObject.load(workerData.object);
      try {
        for (let i = 0; i < workerData.rounds; i++) {
          const link = obj.program('tc_count_syn').attachTc(workerData.iface, { mechanism: 'clsact', direction: i % 2 ? 'egress' : 'ingress' });
          link.detach();
        }
        parentPort.postMessage('ok');
      } catch (e) {
        parentPort.postMessage(String(e && e.message));
      } finally {
        obj.close();
      }
    `;
    using obj = BpfObject.load(objectPath('rt_attach'));
    // Held by the main thread throughout: the qdisc must survive every worker's detach.
    const held = obj.program('tc_count_syn').attachTc(tn.hostIf, { mechanism: 'clsact' });
    const workers = Array.from({ length: 3 }, () => new Worker(script, { eval: true, execArgv: [], workerData: { object: objectPath('rt_attach'), iface: tn.hostIf, rounds } }));
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<string>((resolve) => {
            w.once('message', (m: string) => resolve(m));
            w.once('error', (e) => resolve(`error: ${e.message}`));
            w.once('exit', (code) => resolve(`exit ${code}`));
          }),
      ),
    );
    expect(results).toEqual(['ok', 'ok', 'ok']);
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', tn.hostIf], { encoding: 'utf8' })).toMatch(/clsact/);
    expect(execFileSync('tc', ['filter', 'show', 'dev', tn.hostIf, 'ingress'], { encoding: 'utf8' })).toMatch(/tc_count_syn/);
    held.detach();
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', tn.hostIf], { encoding: 'utf8' })).not.toMatch(/clsact/);
  });

  it('test runs read their options before taking the input bytes', () => {
    using obj = BpfObject.load(objectPath('rt_attach'));
    const data = new Uint8Array(64);
    // A getter that frees the input buffer while the options are being read.
    const options = {
      data,
      get repeat(): number {
        structuredClone(data.buffer, { transfer: [data.buffer] });
        return 1;
      },
    };
    let outcome = '';
    try {
      obj.program('tc_emit_event').testRun(options);
      outcome = 'ran';
    } catch (e) {
      expect(e).toBeInstanceOf(BpfError);
      outcome = 'refused';
    }
    // The buffer was detached before the bytes were taken: nothing (0 bytes) was run.
    expect(data.byteLength).toBe(0);
    expect(outcome).toBe('refused');
    const fine = obj.program('tc_emit_event').testRun({ data: new Uint8Array(64), repeat: 1 });
    expect(fine.data?.length).toBe(64);
  });
});
