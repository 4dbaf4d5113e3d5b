// SPDX-License-Identifier: MIT
// `tcpscope top` as a process, with real traffic from a namespace the test creates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { human, renderTop } from '../lib/top/aggregate';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('top');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

describe('top table', () => {
  it('prints rates as whole bytes or one decimal, never raw fractions', () => {
    expect(human(898.005698005698)).toBe('898 B');
    expect(human(1023.7)).toBe('1.0 KiB');
    expect(human(1536)).toBe('1.5 KiB');
    expect(human(5 * 1024 ** 2 + 1)).toBe('5.0 MiB');
    expect(human(3.25 * 1024 ** 3)).toBe('3.3 GiB');
  });

  it('keeps the columns aligned whatever the rates', () => {
    const host = (remote: string, bytes: number) => ({ remote, packets: 3, bytes, syns: 1, connections: 1 });
    const conn = (remote: string, bytes: number) => ({ local: '10.0.0.1:80', remote, packets: 3, bytes, pid: 1, comm: 'srv' });
    const text = renderTop({
      time: new Date(0), intervalMs: 1053,
      hosts: [host('10.0.0.2', 945.6), host('10.0.0.3', 1_234_567.891), host('10.0.0.4', 7)],
      connections: [conn('10.0.0.2:5555', 945.6), conn('10.0.0.3:5556', 123_456_789.123)],
    });
    const lines = text.split('\n');
    const header = lines.find((l) => l.startsWith('REMOTE HOST'))!;
    const end = header.indexOf('BYTES/s') + 'BYTES/s'.length;
    for (const l of lines.filter((x) => /^10\.0\.0\.\d /.test(x))) {
      expect(l).not.toMatch(/\.\d{2,} /); // no long fractions
      expect(l.slice(0, end)).toMatch(/ (\d+ B|\d+\.\d (KiB|MiB|GiB))$/); // the rate ends under its header
    }
  });
});

describe.skipIf(!enabled)('tcpscope top', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  it('ranks the namespace host with its packets, bytes and the owning process', async () => {
    const port = freePort();
    const server = net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end()); });
    server.listen(port, tn.hostV4);
    await once(server, 'listening');
    const top = spawn(process.execPath, [CLI, 'top', '-i', tn.hostIf, '--json', '--interval', '1s', '--duration', '30s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    top.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    top.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    await eventually(() => /^listening on /m.test(err), 20000, 'the readiness line');
    const client = tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(port), '20', '30000']);
    await once(client, 'exit');
    // Two more refreshes (one JSON line each): the client's last packets are in one of them.
    const refreshes = (): number => out.split('\n').length - 1;
    const seen = refreshes();
    await eventually(() => refreshes() >= seen + 2, 10_000, 'two more refreshes');
    top.kill('SIGINT');
    await once(top, 'exit');
    server.close();
    expect(err).toMatch(/packets received, 0 lost/);
    const snaps = out.trim().split('\n').map((l) => JSON.parse(l) as { hosts: Array<{ remote: string; packets: number; bytes: number; syns: number }>; connections: Array<{ remote: string; comm: string; pid: number }> });
    const hostTotals = snaps.flatMap((s) => s.hosts).filter((h) => h.remote === tn.nsV4);
    expect(hostTotals.reduce((n, h) => n + h.syns, 0)).toBe(20);
    expect(hostTotals.reduce((n, h) => n + h.bytes, 0)).toBeGreaterThan(20 * 30000);
    const owned = snaps.flatMap((s) => s.connections).filter((c) => c.remote.startsWith(`${tn.nsV4}:`) && c.pid === process.pid);
    expect(owned.length).toBeGreaterThan(0);
  }, 60_000);
});
