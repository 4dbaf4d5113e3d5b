// detect() on real traffic in a namespace the test creates: a SYN flood (hping3), a SYN
// scan (nmap) and ordinary connections, all aimed only at the test's host-side veth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { detect, Detector, DetectAlert } from '../lib/detect';
import { bpfAvailable, eventually } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';

const enabled = bpfAvailable('detect');

function have(cmd: string): boolean {
  try {
    require('node:child_process').execFileSync('which', [cmd], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a command inside the namespace, bounded by `timeoutMs`. */
function nsRun(tn: TestNet, cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', tn.ns, 'timeout', String(Math.ceil(timeoutMs / 1000)), cmd, ...args], { timeout: timeoutMs + 2000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, out: stdout + stderr });
    });
  });
}

async function listen(host: string): Promise<net.Server> {
  const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); s.on('error', () => {}); });
  server.listen(0, host, 1024);
  await once(server, 'listening');
  return server;
}

/** Collects a detector's alerts in the background. */
function collect(d: Detector): DetectAlert[] {
  const alerts: DetectAlert[] = [];
  void (async () => {
    for await (const a of d) {
      if (process.env['TCPSCOPE_DEBUG_DETECT']) console.log(a.state, a.key, a.summary, JSON.stringify(a.evidence).slice(0, 400));
      alerts.push(a);
    }
  })();
  return alerts;
}

describe.skipIf(!enabled)('detect() on real traffic', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  it.skipIf(!have('hping3'))('a SYN flood from one source raises syn_flood naming it, then clears', async () => {
    const server = await listen(tn.hostV4);
    const port = (server.address() as net.AddressInfo).port;
    const hooked: DetectAlert[] = [];
    const d = detect({ interfaces: [tn.hostIf], thresholds: { synFlood: { clearAfterMs: 1000 } }, tickMs: 200, onAlert: (a) => { hooked.push(a); } });
    const alerts = collect(d);
    try {
      const r = await nsRun(tn, 'hping3', ['-S', '-p', String(port), '--faster', '-c', '3000', tn.hostV4], 20000);
      expect(r.out).not.toMatch(/command not found/);
      const raised = await eventually(() => alerts.find((a) => a.kind === 'syn_flood' && a.state === 'raised' && a.evidence['scope'] === 'source'), 8000, 'syn_flood raised');
      expect(raised.evidence.sources).toEqual([tn.nsV4]);
      expect(raised.key).toBe(`syn_flood/source/${tn.nsV4}`);
      expect(raised.summary).toContain(tn.nsV4);
      expect(Number(raised.evidence['halfOpenRate'])).toBeGreaterThanOrEqual(50);
      expect(raised.evidence.ports).toContain(port);
      const byPort = alerts.find((a) => a.kind === 'syn_flood' && a.state === 'raised' && a.evidence['scope'] === 'port');
      expect(byPort?.evidence.ports).toEqual([port]);
      expect(byPort?.evidence.sources).toContain(tn.nsV4);
      expect(d.active().some((a) => a.key === raised.key)).toBe(true);
      const cleared = await eventually(() => alerts.find((a) => a.key === raised.key && a.state === 'cleared'), 15000, 'syn_flood cleared');
      expect(cleared.at.getTime()).toBeGreaterThan(raised.at.getTime());
      expect(d.active().some((a) => a.key === raised.key)).toBe(false);
      expect(alerts.some((a) => a.kind === 'port_scan')).toBe(false);
      expect(hooked.map((a) => a.key + a.state)).toEqual(expect.arrayContaining([raised.key + 'raised', raised.key + 'cleared']));
    } finally {
      d.close();
      server.close();
    }
  }, 45000);

  it.skipIf(!have('nmap'))('an nmap SYN scan raises port_scan naming the source and the ports', async () => {
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200, thresholds: { portScan: { clearAfterMs: 2000 } } });
    const alerts = collect(d);
    try {
      const r = await nsRun(tn, 'nmap', ['-sS', '-n', '-Pn', '-p', '1-200', '--max-rate', '2000', '--max-retries', '1', tn.hostV4], 30000);
      expect(r.out).toMatch(/Nmap done/);
      const raised = await eventually(() => alerts.find((a) => a.kind === 'port_scan' && a.state === 'raised'), 8000, 'port_scan raised');
      expect(raised.evidence.sources).toEqual([tn.nsV4]);
      expect(raised.summary).toContain(tn.nsV4);
      const ports = raised.evidence.ports as number[];
      expect(ports.length).toBeGreaterThanOrEqual(7);
      expect(ports.every((p) => p >= 1 && p <= 200)).toBe(true);
      const cleared = await eventually(() => alerts.find((a) => a.key === raised.key && a.state === 'cleared'), 10000, 'port_scan cleared');
      const all = cleared.evidence.ports as number[];
      expect(all.length).toBeGreaterThan(150);
      expect(all.every((p) => p >= 1 && p <= 200)).toBe(true);
      expect(alerts.filter((a) => a.kind === 'port_scan' && a.state === 'raised')).toHaveLength(1);
    } finally {
      d.close();
    }
  }, 45000);

  it('a few hundred ordinary connections raise nothing', async () => {
    const server = await listen(tn.hostV4);
    const port = (server.address() as net.AddressInfo).port;
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200 });
    const alerts = collect(d);
    try {
      const children = [0, 1, 2].map(() => tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(port), '100', '200']));
      const codes = await Promise.all(children.map(async (c) => (await once(c, 'exit'))[0]));
      expect(codes).toEqual([0, 0, 0]);
      // Let every window see the traffic.
      await new Promise((r) => setTimeout(r, 1500));
      const s = d.stats();
      expect(s.packets?.syns).toBeGreaterThanOrEqual(300);
      expect(s.events['connections']).toBeGreaterThanOrEqual(300);
      expect(alerts).toEqual([]);
      expect(d.active()).toEqual([]);
    } finally {
      d.close();
      server.close();
    }
  }, 30000);
});
