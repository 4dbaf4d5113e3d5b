// SPDX-License-Identifier: MIT
// The agent as it runs in production: a process with a config file, scraped over HTTP,
// raising alerts from real traffic and, when enabled, denying their sources.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { validateServeConfig } from '../lib/serve/config';
import { attachedPrograms } from '../lib/bpf';
import { bpfAvailable, ROOT, eventually } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { unusedPort as freePort } from './helpers/listen';

const enabled = bpfAvailable('serve');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

describe('serve config', () => {
  it('names the bad key and what it should be', () => {
    expect(() => validateServeConfig({ probs: {} })).toThrow(/config\.probs: unknown key/);
    expect(() => validateServeConfig({ guard: { deny: ['10.0.0.0/33'] } })).toThrow(/config\.guard\.deny\[0\]: bad prefix length/);
    expect(() => validateServeConfig({ guard: { autoDeny: { kinds: ['port_scan'], ttl: 'soon' } } })).toThrow(/config\.guard\.autoDeny\.ttl: bad duration/);
    expect(() => validateServeConfig({ exporters: { prometheus: { port: 'x' } } })).toThrow(/config\.exporters\.prometheus\.port/);
    expect(() => validateServeConfig({ detect: { detectors: { magic: true } } })).toThrow(/config\.detect\.detectors\.magic: unknown key/);
    const ok = validateServeConfig({});
    expect(ok.guard.enabled).toBe(false); // enforcement is opt-in
    expect(ok.detect.enabled).toBe(true);
  });
});


describe.skipIf(!enabled)('tcpscope serve', () => {
  let tn: TestNet;
  let dir: string;
  beforeAll(() => { tn = createTestNet(); dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-serve-')); });
  afterAll(() => { tn?.destroy(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('exports metrics of real traffic, alerts on a scan and denies its source', async () => {
    const metricsPort = await freePort();
    const alertsFile = path.join(dir, 'alerts.ndjson');
    const config = {
      interfaces: [tn.hostIf],
      guard: { enabled: true, autoDeny: { kinds: ['port_scan'], ttl: '60s' } },
      exporters: { prometheus: { port: metricsPort, host: '127.0.0.1' }, alerts: { ndjson: alertsFile } },
    };
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(config));
    const agent = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    agent.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    try {
      await eventually(() => /metrics at/.test(stderr), 20000, 'agent started');
      const appPort = await freePort();
      const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
      server.listen(appPort, tn.hostV4);
      await once(server, 'listening');
      const client = tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(appPort), '12', '1000']);
      expect((await once(client, 'exit'))[0]).toBe(0);

      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const value = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      await eventually(async () => value(await scrape(), /^tcpscope_connections_opened_total\{.*direction="passive"/) >= 12, 10000, 'connections counted');
      const text = await scrape();
      expect(value(text, new RegExp(`^tcpscope_packets_total\\{.*interface="${tn.hostIf}".*flags="syn"`))).toBe(12);
      expect(value(text, /^tcpscope_ringbuf_lost_total/)).toBe(0);
      // The kernel's SYN counts reach tcpscope_syns_total (the dashboard's SYN panels).
      await eventually(async () => value(await scrape(), new RegExp(`^tcpscope_syns_total\\{.*port="${appPort}"`)) === 12, 10000, 'SYNs counted per port');

      // A SYN scan of 200 ports from the namespace: an alert, then the guard denies the source.
      const scan = spawnSync('ip', ['netns', 'exec', tn.ns, 'nmap', '-sS', '-Pn', '-n', '-p', '1-200', '--max-rate', '2000', '--max-retries', '0', tn.hostV4], { encoding: 'utf8', timeout: 60000 });
      expect(scan.status).toBe(0);
      await eventually(() => fs.existsSync(alertsFile) && /"port_scan"/.test(fs.readFileSync(alertsFile, 'utf8')), 10000, 'port scan alert');
      // The scan's SYNs to closed ports are dropped (NO_SOCKET from 5.17): counted in the kernel, read at the scrape.
      await eventually(async () => value(await scrape(), /^tcpscope_drops_total\{.*type="drop"/) >= 150, 10000, 'the scan\'s drops counted');
      const alert = fs.readFileSync(alertsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; state: string; evidence: { sources?: string[] } }).find((a) => a.kind === 'port_scan' && a.state === 'raised')!;
      expect(alert.evidence.sources).toContain(tn.nsV4);
      await eventually(() => stderr.includes(`guard: denied ${tn.nsV4}`), 5000, 'auto-deny');
      const blocked = tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(appPort), '1', '10']);
      const [code] = (await once(blocked, 'exit')) as [number];
      expect(code).not.toBe(0); // the denied source cannot connect any more
      await eventually(async () => value(await scrape(), /^tcpscope_guard_drops_total/) > 0, 5000, 'guard drops exported');
      server.close();
    } finally {
      agent.kill('SIGTERM');
      await once(agent, 'exit');
    }
    expect(agent.exitCode).toBe(0);
    expect(stderr).toMatch(/stopped, everything detached/);
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
  }, 120_000);

  it('without the detector, counts packets and SYNs with a packet program of its own', async () => {
    const metricsPort = await freePort();
    const configFile = path.join(dir, 'no-detect.json');
    fs.writeFileSync(configFile, JSON.stringify({
      interfaces: [tn.hostIf], detect: { enabled: false },
      probes: { connections: false, retransmits: false, resets: false, drops: false, rtt: false },
      exporters: { prometheus: { port: metricsPort, host: '127.0.0.1' } },
    }));
    const agent = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    agent.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    try {
      await eventually(() => /metrics at/.test(stderr), 20000, 'agent started');
      expect(attachedPrograms(tn.hostIf)).toHaveLength(1);
      const appPort = 20000 + Math.floor(Math.random() * 10000);
      const server = net.createServer((c) => { c.resume(); c.on('end', () => c.end()); });
      server.listen(appPort, tn.hostV4);
      await once(server, 'listening');
      const client = tn.spawnNode(TRAFFIC_SCRIPT, [tn.hostV4, String(appPort), '7', '100']);
      expect((await once(client, 'exit'))[0]).toBe(0);
      server.close();
      const value = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      await eventually(async () => value(await scrape(), new RegExp(`^tcpscope_syns_total\\{.*port="${appPort}"`)) === 7, 10000, 'SYNs counted per port');
      const text = await scrape();
      expect(value(text, new RegExp(`^tcpscope_packets_total\\{.*interface="${tn.hostIf}".*flags="syn"`))).toBe(7);
      expect(value(text, new RegExp(`^tcpscope_packets_total\\{.*interface="${tn.hostIf}".*flags="ack"`))).toBeGreaterThanOrEqual(7);
      expect(value(text, new RegExp(`^tcpscope_packet_bytes_total\\{.*interface="${tn.hostIf}"`))).toBeGreaterThan(7 * 54);
    } finally {
      agent.kill('SIGTERM');
      await once(agent, 'exit');
    }
    expect(agent.exitCode).toBe(0);
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
  }, 60_000);
});
