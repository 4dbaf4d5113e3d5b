// SPDX-License-Identifier: MIT
// `-i any`: packets, top, watch and serve attach to every interface, and follow one
// created after they started (a veth pair into a namespace this test creates then).
import { describe, expect, it } from 'vitest';
import { spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { attachedPrograms } from '../lib/bpf/introspect';
import { parseMonitorLine } from '../lib/net/link-watch';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { createTestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('-i any');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

interface Run { child: ChildProcess; out: () => string; err: () => string }
function run(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return { child, out: () => out, err: () => err };
}

describe('rtnetlink link lines', () => {
  it('reads new, changed and deleted links', () => {
    expect(parseMonitorLine('200: tsA1@tsB1: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue')).toEqual({ ifindex: 200, name: 'tsA1', deleted: false });
    expect(parseMonitorLine('7: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500')).toEqual({ ifindex: 7, name: 'eth0', deleted: false });
    expect(parseMonitorLine('Deleted 200: tsA1@NONE: <BROADCAST,MULTICAST> mtu 1500')).toEqual({ ifindex: 200, name: 'tsA1', deleted: true });
    expect(parseMonitorLine('inet 10.0.0.1/24 scope global eth0')).toBeUndefined();
  });
});

describe.skipIf(!enabled)('-i any follows interfaces created later', { timeout: 90_000 }, () => {
  const port = freePort();
  const cases: Array<{ name: string; args: (metricsPort: number) => string[]; seen: (r: Run, hostIf: string, metricsPort: number) => Promise<boolean> }> = [
    { name: 'packets', args: () => ['packets', '-i', 'any', '--json', `tcp port ${port}`], seen: async (r, hostIf) => r.out().split('\n').some((l) => l.includes(`"ifname":"${hostIf}"`)) },
    { name: 'top', args: () => ['top', '-i', 'any', '--json', '--interval', '300ms'], seen: async (r) => /"packets":[1-9]/.test(r.out()) && r.out().includes('10.199.') },
    { name: 'watch', args: () => ['watch', '-i', 'any', '--no-demo', '--json'], seen: async (r, hostIf) => r.out().includes(`"${hostIf}":{"packets":`) },
    { name: 'serve', args: (m) => ['serve', '--prometheus', String(m), '-i', 'any'], seen: async (_r, hostIf, m) => new RegExp(`tcpscope_packets_total\\{[^}]*interface="${hostIf}"[^}]*\\} [1-9]`).test(await (await fetch(`http://127.0.0.1:${m}/metrics`)).text()) },
  ];
  for (const c of cases) {
    it(`${c.name} -i any`, async () => {
      const metricsPort = freePort();
      const r = run(c.args(metricsPort));
      let tn: ReturnType<typeof createTestNet> | undefined;
      try {
        await eventually(() => /^(listening on|tracing|tcpscope serve: watching) /m.test(r.err()), 20000, `${c.name} to be ready: ${r.err()}`);
        tn = createTestNet(); // a new veth pair, after the start
        const hostIf = tn.hostIf;
        await eventually(() => r.err().includes(`now also listening on ${hostIf}`), 10000, `${c.name} to attach to ${hostIf}: ${r.err()}`);
        const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
        server.listen(port, tn.hostV4);
        await once(server, 'listening');
        try {
          await eventually(async () => {
            const client = tn!.spawnNode(TRAFFIC_SCRIPT, [tn!.hostV4, String(port), '2', '2000']);
            await once(client, 'exit');
            return c.seen(r, hostIf, metricsPort);
          }, 15000, `${c.name} to see packets on ${hostIf}`);
        } finally {
          server.close();
        }
        r.child.kill('SIGINT');
        const [code] = (await once(r.child, 'exit')) as [number];
        expect(code).toBe(0);
        expect(attachedPrograms(hostIf)).toEqual([]);
      } finally {
        if (r.child.exitCode === null) r.child.kill('SIGKILL');
        tn?.destroy();
      }
    });
  }
});
