// SPDX-License-Identifier: MIT
// detect() on real traffic in a namespace the test creates: a SYN flood (hping3), a SYN
// scan (nmap) and ordinary connections, all aimed only at the test's host-side veth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import { detect, Detector, DetectAlert } from '../lib/detect';
import { DEFAULT_THRESHOLDS } from '../lib/detect/thresholds';
import { packets } from '../lib/probes/packets';
import { ROOT, bpfAvailable, eventually } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { listen } from './helpers/listen';
import { freePort } from './helpers/tcpprobe';

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
    const server = await listen(0, tn.hostV4, { backlog: 1024 });
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
      // Ticks run during the flood (the reader yields to timers): the per-port alert may come a tick later.
      const byPort = await eventually(() => alerts.find((a) => a.kind === 'syn_flood' && a.state === 'raised' && a.evidence['scope'] === 'port'), 8000, 'per-port syn_flood raised');
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
    const server = await listen(0, tn.hostV4, { backlog: 1024 });
    const port = (server.address() as net.AddressInfo).port;
    const TICK_MS = 200;
    const d = detect({ interfaces: [tn.hostIf], tickMs: TICK_MS });
    const alerts = collect(d);
    try {
      const children = [0, 1, 2].map(() => tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(port), '100', '200']));
      const codes = await Promise.all(children.map(async (c) => (await once(c, 'exit'))[0]));
      expect(codes).toEqual([0, 0, 0]);
      await eventually(() => {
        const c = d.stats();
        return Math.min(c.packets?.syns ?? 0, c.events['connections'] ?? 0, c.handshakes ?? 0, c.packets?.synacksOut ?? 0) >= 300;
      }, 10_000, 'the 300 connections counted');
      // Then evaluated: a SYN counts as half-open only once the grace period is over, so the
      // detector ticks on past it (and a bucket) before anything can be said about alerts.
      const { graceMs, bucketMs } = DEFAULT_THRESHOLDS.synFlood;
      const counted = d.stats().ticks;
      await eventually(() => d.stats().ticks > counted + (graceMs + bucketMs) / TICK_MS, 10_000, 'ticks past the grace period');
      const s = d.stats();
      expect(s.packets?.syns).toBeGreaterThanOrEqual(300);
      expect(s.events['connections']).toBeGreaterThanOrEqual(300);
      // The kernel's own counts: SYN-ACKs sent for them, handshakes completed.
      expect(s.handshakes).toBeGreaterThanOrEqual(300);
      expect(s.packets?.synacksOut).toBeGreaterThanOrEqual(300);
      expect(s.sampled['packets']).toBe(0);
      expect(alerts).toEqual([]);
      expect(d.active()).toEqual([]);
    } finally {
      d.close();
      server.close();
    }
  }, 45000);

  it('a burst of connections over a learned baseline raises rate_anomaly, which clears when it ends', async () => {
    const server = await listen(0, tn.hostV4, { backlog: 1024 });
    const port = (server.address() as net.AddressInfo).port;
    const d = detect({
      interfaces: [tn.hostIf], tickMs: 100, detectors: { synFlood: false, portScan: false, sequence: false },
      thresholds: { anomaly: { intervalMs: 500, warmupIntervals: 6, clearIntervals: 2 } },
    });
    const alerts = collect(d);
    try {
      // Baseline: about 4 connections a second for 5 s.
      for (let i = 0; i < 20; i++) {
        const s = net.connect({ host: tn.hostV4, port });
        await once(s, 'connect');
        s.end();
        await new Promise((r) => setTimeout(r, 250)); // pacing: a steady rate is the baseline to learn
      }
      expect(alerts.filter((a) => a.key.includes(`/port/${port}`))).toEqual([]);
      const child = tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(port), '200', '0']);
      expect((await once(child, 'exit'))[0]).toBe(0);
      const key = `rate_anomaly/connection/port/${port}`;
      const raised = await eventually(() => alerts.find((a) => a.key === key && a.state === 'raised'), 5000, 'rate_anomaly raised');
      expect(raised.evidence).toMatchObject({ metric: 'connection', scope: 'port', ports: [port] });
      expect(Number(raised.evidence['rate'])).toBeGreaterThan(Number(raised.evidence['mean']));
      await eventually(() => alerts.find((a) => a.key === key && a.state === 'cleared'), 8000, 'rate_anomaly cleared');
    } finally {
      d.close();
      server.close();
    }
  }, 60000);

  it.skipIf(!have('nmap'))('an IPv6 SYN scan names the IPv6 source', async () => {
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200, detectors: { synFlood: false, anomaly: false, sequence: false } });
    const alerts = collect(d);
    try {
      const r = await nsRun(tn, 'nmap', ['-6', '-sS', '-n', '-Pn', '-p', '1-50', '--max-rate', '2000', '--max-retries', '0', tn.hostV6], 30000);
      expect(r.out).toMatch(/Nmap done/);
      const raised = await eventually(() => alerts.find((a) => a.kind === 'port_scan' && a.state === 'raised'), 8000, 'port_scan raised');
      expect(raised.evidence.sources).toEqual([tn.nsV6]);
      expect(raised.evidence['targets']).toEqual([tn.hostV6]);
    } finally {
      d.close();
    }
  }, 45000);

  // Every scan type and pace the detector promises, each over 12 closed privileged ports
  // (weight 36 >= 21): connect, XMAS, NULL, ACK scans; a polite (-T2, 0.4 s between probes)
  // and a delayed (--scan-delay 500ms) SYN scan.
  it.skipIf(!have('nmap')).each(
    [['-sT'], ['-sX'], ['-sN'], ['-sA'], ['-sS', '-T2'], ['-sS', '--scan-delay', '500ms']].map((f) => [f.join(' '), f] as [string, string[]]),
  )('nmap %s raises port_scan naming the source', async (_name: string, flags: string[]) => {
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200, detectors: { synFlood: false, anomaly: false, sequence: false } });
    const alerts = collect(d);
    try {
      const r = await nsRun(tn, 'nmap', [...flags, '-n', '-Pn', '-p', '1-12', '--max-retries', '0', tn.hostV4], 30000);
      expect(r.out).toMatch(/Nmap done/);
      const raised = await eventually(() => alerts.find((a) => a.kind === 'port_scan' && a.state === 'raised'), 8000, 'port_scan raised');
      expect(raised.evidence.sources).toEqual([tn.nsV4]);
      expect((raised.evidence.ports as number[]).every((p) => p >= 1 && p <= 12)).toBe(true);
    } finally {
      d.close();
    }
  }, 45000);

  it.skipIf(!have('nmap'))('an nmap FIN scan is seen from the FIN probes themselves', async () => {
    // Resets (tracepoint ring) and FIN probes (packet ring) race to raise the alert; the
    // cleared alert carries the whole scan, FIN probes included.
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200, thresholds: { portScan: { clearAfterMs: 1500 } }, detectors: { synFlood: false, anomaly: false, sequence: false } });
    const alerts = collect(d);
    try {
      const r = await nsRun(tn, 'nmap', ['-sF', '-n', '-Pn', '-p', '1000-1040', '--max-rate', '2000', '--max-retries', '0', tn.hostV4], 30000);
      expect(r.out).toMatch(/Nmap done/);
      const raised = await eventually(() => alerts.find((a) => a.kind === 'port_scan' && a.state === 'raised'), 8000, 'port_scan raised');
      expect(raised.evidence.sources).toEqual([tn.nsV4]);
      const cleared = await eventually(() => alerts.find((a) => a.kind === 'port_scan' && a.state === 'cleared'), 8000, 'port_scan cleared');
      expect((cleared.evidence['probeKinds'] as Record<string, number>)['fin']).toBeGreaterThan(0);
    } finally {
      d.close();
    }
  }, 45000);

  it.skipIf(!have('hping3'))('segments far outside the receive window and replayed data raise sequence_anomaly', { timeout: 60000 }, async () => {
    const server = await listen(0, tn.hostV4, { backlog: 1024 });
    const port = (server.address() as net.AddressInfo).port;
    // Below the ephemeral range (32768-60999): the earlier tests' connections leave
    // TIME_WAIT sockets on ephemeral ports of the namespace, and binding one of those
    // fails with EADDRINUSE.
    const clientPort = freePort();
    // The client's first data segment gives a sequence number and an acceptable ACK.
    const d = detect({ interfaces: [tn.hostIf], tickMs: 200, detectors: { synFlood: false, portScan: false, anomaly: false } });
    const alerts = collect(d);
    const probe = packets({ interfaces: [tn.hostIf], filter: `src port ${clientPort} and psh` });
    const firstData = (async () => { for await (const p of probe) return p; return undefined; })();
    // A client that cannot connect says why (stderr) and exits at once.
    const client = tn.spawnNode('-e', [`const s=require('net').connect({host:'${tn.hostV4}',port:${port},localPort:${clientPort}},()=>s.write('hello'));s.on('error',(e)=>{console.error('client: '+e.message);process.exit(3);});setTimeout(()=>s.destroy(),15000);`]);
    let clientErr = '';
    client.stderr?.on('data', (b: Buffer) => { clientErr += b.toString(); });
    const clientFailed = once(client, 'exit').then(() => undefined);
    try {
      const seg = await Promise.race([firstData, clientFailed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20000))]);
      probe.close();
      expect(clientErr).toBe('');
      expect(seg).toBeDefined();
      const common = ['-A', '-s', String(clientPort), '-k', '-p', String(port), '-L', String(seg!.ack)];
      // 12 segments 2^30 beyond the window.
      await nsRun(tn, 'hping3', [...common, '-M', String((seg!.seq + 2 ** 30) >>> 0), '-d', '20', '-c', '12', '-i', 'u10000', tn.hostV4], 10000);
      const oow = await eventually(() => alerts.find((a) => a.key === `sequence_anomaly/out_of_window/${tn.nsV4}`), 8000, 'out_of_window alert');
      expect(oow.evidence).toMatchObject({ type: 'out_of_window', sources: [tn.nsV4], ports: [port] });
      expect(oow.summary).toContain(tn.nsV4);
      // The already-received 'hello' three more times within 60 ms: faster than any retransmission timer.
      await nsRun(tn, 'hping3', [...common, '-P', '-M', String(seg!.seq), '-d', '5', '-c', '3', '-i', 'u20000', tn.hostV4], 10000);
      const replay = await eventually(() => alerts.find((a) => a.key === `sequence_anomaly/replay/${tn.nsV4}`), 8000, 'replay alert');
      expect(replay.evidence['samples']).toEqual(expect.arrayContaining([expect.objectContaining({ seq: seg!.seq, copies: 3 })]));
    } finally {
      probe.close();
      client.kill();
      d.close();
      server.close();
    }
  });

  it.skipIf(!have('nmap'))('tcpscope detect --json prints the alerts as NDJSON', async () => {
    const { spawn } = await import('node:child_process');
    const cli = spawn(process.execPath, [path.join(ROOT, 'dist', 'lib', 'cli', 'main.js'), 'detect', '-i', tn.hostIf, '--json', '-c', '1', '--duration', '40s', '--disable', 'anomaly,sequence'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cli.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    cli.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    try {
      await eventually(() => err.includes('listening on'), 30000, 'the CLI to attach');
      await nsRun(tn, 'nmap', ['-sS', '-n', '-Pn', '-p', '1-60', '--max-rate', '2000', '--max-retries', '0', tn.hostV4], 30000);
      const [code] = await once(cli, 'exit');
      expect(code).toBe(0);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; state: string; key: string; evidence: { sources: string[] } });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ kind: 'port_scan', state: 'raised', key: `port_scan/${tn.nsV4}`, evidence: { sources: [tn.nsV4] } });
      expect(err).toMatch(/1 raised, 0 cleared; \d+ events read, \d+ sampled, \d+ lost/);
    } finally {
      cli.kill();
    }
  }, 60000);
});
