// SPDX-License-Identifier: MIT
// `serve -i any` follows interfaces created after it started with all of its parts: the
// packets probe, the detector and the guard. serve runs inside a network namespace this test
// creates (so `any` is that namespace's interfaces, and the guard's XDP touches nothing of the
// host); after its readiness line a veth pair joins it to a second namespace, from which an
// nmap SYN scan must raise port_scan and get the scanner denied at XDP on the new veth. The
// veth then disappears while serve runs: let go without errors, and serve exits cleanly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';

const enabled = bpfAvailable('serve -i any follows new interfaces');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

const tag = `${process.pid}`;
const nsServe = `tcps-${tag}-sa`;
const nsPeer = `tcps-${tag}-sb`;
const ifServe = `tsfa${tag}`.slice(0, 15);
const ifPeer = `tsfb${tag}`.slice(0, 15);
const octet = process.pid % 250;
const serveAddr = `10.233.${octet}.1`;
const peerAddr = `10.233.${octet}.2`;

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** How a TCP connection from the peer namespace to `port` of serve's address ends: refused (it got through), or timeout (dropped). */
function connectFromPeer(port: number): string {
  const r = spawnSync('ip', ['netns', 'exec', nsPeer, process.execPath, '-e',
    `const s = require('node:net').connect({ host: '${serveAddr}', port: ${port} }); s.setTimeout(2000, () => { console.log('timeout'); process.exit(0); }); s.on('connect', () => { console.log('connected'); process.exit(0); }); s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); process.exit(0); });`],
  { encoding: 'utf8', timeout: 10000 });
  return r.stdout.trim();
}

describe.skipIf(!enabled || !have('nmap'))('serve -i any: detect and guard follow new interfaces', { timeout: 120_000 }, () => {
  let dir: string;
  let serve: ChildProcess | undefined;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-follow-${tag}-`));
    for (const ns of [nsServe, nsPeer]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  });

  afterAll(() => {
    if (serve && serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    for (const ns of [nsServe, nsPeer]) {
      try { ip('netns', 'del', ns); } catch { /* not made */ }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a veth created after the readiness line is watched by the detector and guarded; its removal is let go', async () => {
    const config = path.join(dir, 'agent.json');
    fs.writeFileSync(config, JSON.stringify({
      probes: { connections: false, retransmits: false, rtt: false },
      detect: { enabled: true },
      guard: { enabled: true, autoDeny: { kinds: ['port_scan'], ttl: '60s' }, autoProtect: false },
      exporters: { alerts: { ndjson: '-' } },
    }));
    serve = spawn('ip', ['netns', 'exec', nsServe, process.execPath, CLI, 'serve', '--config', config, '-i', 'any'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    serve.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    serve.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    await eventually(() => /tcpscope serve: watching lo;.*detect on; guard on/.test(err) || serve!.exitCode !== null, 30000, 'serve to be ready');
    expect(serve.exitCode, err).toBeNull();

    // After the readiness line: a veth pair from serve's namespace to the peer's.
    ip('-n', nsServe, 'link', 'add', ifServe, 'type', 'veth', 'peer', 'name', ifPeer, 'netns', nsPeer);
    ip('-n', nsServe, 'addr', 'add', `${serveAddr}/24`, 'dev', ifServe);
    ip('-n', nsPeer, 'addr', 'add', `${peerAddr}/24`, 'dev', ifPeer);
    ip('-n', nsServe, 'link', 'set', ifServe, 'up');
    ip('-n', nsPeer, 'link', 'set', ifPeer, 'up');
    // The packet and SYN metrics are counted by the detector's packet program (no program of
    // serve's own beside it), so it follows for both.
    await eventually(() => err.includes(`now also listening on ${ifServe} (detect, guard)`), 15000, `serve to follow ${ifServe}: ${err}`);
    // The guard's XDP program is on the new veth.
    expect(ip('-n', nsServe, '-d', 'link', 'show', 'dev', ifServe)).toMatch(/prog\/xdp id \d+/);
    const closedPort = 20000 + (process.pid % 10000);
    expect(connectFromPeer(closedPort)).toBe('refused');

    // A SYN scan over the new veth: the detector sees it, the guard denies the scanner there.
    const scan = spawnSync('ip', ['netns', 'exec', nsPeer, 'nmap', '-sS', '-Pn', '-n', '-p', '1-200', '--max-rate', '2000', '--max-retries', '0', serveAddr], { encoding: 'utf8', timeout: 60000 });
    expect(scan.status, scan.stderr).toBe(0);
    await eventually(() => out.split('\n').some((l) => l.includes('"port_scan"') && l.includes(peerAddr) && l.includes('"raised"')), 20000, `a port_scan alert naming ${peerAddr}: ${out}`);
    await eventually(() => err.includes(`guard: denied ${peerAddr}`), 10000, `the scanner to be denied: ${err}`);
    expect(connectFromPeer(closedPort)).toBe('timeout');

    // The veth disappears while serve runs: let go, no error, serve goes on and stops cleanly.
    ip('-n', nsServe, 'link', 'del', ifServe);
    await eventually(() => err.includes(`${ifServe} is gone: detached (detect, guard)`), 15000, `serve to let go of ${ifServe}: ${err}`);
    expect(serve.exitCode).toBeNull();
    serve.kill('SIGINT');
    const [code] = (await once(serve, 'exit')) as [number];
    expect(code, err).toBe(0);
    expect(err).toMatch(/tcpscope serve: stopped, everything detached/);
    expect(err).not.toMatch(/cannot attach|Error|\n\s+at /);
  });
});
