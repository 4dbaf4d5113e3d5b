// SPDX-License-Identifier: MIT
// The guard: unit tests of its pieces, test runs of the XDP program on built frames, and
// real connections from two source addresses in a namespace the test creates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { Guard, GuardSafetyError } from '../lib/guard';
import { ExpiryQueue } from '../lib/guard/expiry';
import { defaultGateways, denyProblem, establishedPeers, sshClient } from '../lib/guard/safety';
import { parseCidr } from '../lib/net/addr';
import { attachedPrograms, tcpFrame } from '../lib/bpf';
import { main } from '../lib/cli/main';
import { kernelAtLeast } from '../lib/kernel/version';
import { bpfAvailable, eventually } from './helpers/bpf';
import { floodTarget } from './helpers/flood';
import { createTestNet, TestNet } from './helpers/netns';
import { startSynFlood, FloodNet } from '../lib/net/floodnet';
import { listen } from './helpers/listen';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('guard');
const XDP_DROP = 1, XDP_PASS = 2, XDP_TX = 3;
/** The variant this kernel loads: cookies from 6.0, BPF_FETCH atomics from 5.12. */
const EXPECTED_PROGRAM = kernelAtLeast(6, 0) ? 'guard_xdp' : kernelAtLeast(5, 12) ? 'guard_xdp_nocookie' : 'guard_xdp_xadd';

/** Ones' complement sum of 16-bit big-endian words (0xffff over a correct checksummed range). */
function onesSum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) | (p[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

describe('guard safety rules', () => {
  it('refuses every address, the SSH client, established peers, default gateways', () => {
    const ssh = sshClient({ SSH_CONNECTION: '203.0.113.9 52100 192.0.2.1 22' })!;
    expect(ssh.address).toBe('203.0.113.9');
    const list = [ssh];
    expect(denyProblem(parseCidr('0.0.0.0/0'), list)).toMatch(/covers every IPv4 address/);
    expect(denyProblem(parseCidr('::/0'), list)).toMatch(/covers every IPv6 address/);
    expect(denyProblem(parseCidr('203.0.113.0/24'), list)).toMatch(/203\.0\.113\.9, the client of this SSH session/);
    expect(denyProblem(parseCidr('203.0.113.9'), list)).toMatch(/SSH session/);
    expect(denyProblem(parseCidr('203.0.113.10'), list)).toBeUndefined();
    expect(sshClient({ SSH_CONNECTION: 'garbage' })).toBeUndefined();
    expect(sshClient({})).toBeUndefined();
    // The machine's own tables: whatever gateway it has is refused.
    for (const gw of defaultGateways()) expect(denyProblem(parseCidr(gw.address), defaultGateways())).toMatch(/default gateway/);
  });

  it('finds the peer of an established connection to a local listener, not of an outgoing one', async () => {
    const server = net.createServer((s) => s.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.9' });
    await once(client, 'connect');
    try {
      const peers = establishedPeers();
      const mine = peers.find((p) => p.address === '127.0.0.9');
      expect(mine?.reason).toMatch(new RegExp(`established connection to local port ${port}`));
      // The client side of that connection (local port not listening) is not a peer to protect.
      expect(peers.some((p) => p.reason.includes(`local port ${client.localPort}`))).toBe(false);
    } finally {
      client.destroy();
      server.close();
    }
  });
});

describe('ExpiryQueue', () => {
  it('pops what is due in order, honours extensions and deletions', () => {
    const q = new ExpiryQueue<string>();
    q.set('a', 30, 'A');
    q.set('b', 10, 'B');
    q.set('c', 20, 'C');
    q.set('b', 40, 'B2'); // extended: the old time is stale
    q.delete('c');
    expect(q.next()).toBe(30);
    expect(q.popDue(35)).toEqual([['a', 'A']]);
    expect(q.popDue(39)).toEqual([]);
    expect(q.popDue(100)).toEqual([['b', 'B2']]);
    expect(q.next()).toBeUndefined();
    expect(q.size).toBe(0);
  });

  it('stays ordered over many random ids', () => {
    const q = new ExpiryQueue<number>();
    const times = Array.from({ length: 5000 }, (_, i) => [i, Math.floor(Math.random() * 1e6)] as const);
    for (const [i, t] of times) q.set(String(i), t, i);
    const popped = q.popDue(Infinity).map(([id]) => times[Number(id)]![1]);
    expect(popped).toEqual([...popped].sort((a, b) => a - b));
    expect(popped).toHaveLength(5000);
  });
});

describe.skipIf(!enabled)('guard XDP program (test runs)', () => {
  const syn = (src: string, dst = src.includes(':') ? '2001:db8::ff' : '192.0.2.254') =>
    tcpFrame({ src, dst, sport: 40000, dport: 80, flags: { syn: true }, options: { mss: 1460 } });

  it('drops listed IPv4/IPv6 prefixes, passes the rest, non-TCP and non-IP', () => {
    using guard = Guard.start({ interfaces: [] });
    const prog = guard.program;
    // Kernels without the cookie helpers (before 6.0) or BPF_FETCH atomics (before 5.12) get the variants without them.
    expect(prog.name).toBe(EXPECTED_PROGRAM);
    expect(guard.synCookies).toBe(EXPECTED_PROGRAM === 'guard_xdp');
    guard.deny('198.51.100.0/24');
    guard.deny('2001:db8:bad::/48');
    guard.allow('198.51.100.7');
    expect(prog.testRun({ data: syn('198.51.100.1') }).retval).toBe(XDP_DROP);
    expect(prog.testRun({ data: syn('198.51.100.7') }).retval).toBe(XDP_PASS);
    expect(prog.testRun({ data: syn('198.51.101.1') }).retval).toBe(XDP_PASS);
    expect(prog.testRun({ data: syn('2001:db8:bad:1::5') }).retval).toBe(XDP_DROP);
    expect(prog.testRun({ data: syn('2001:db8:bae::5') }).retval).toBe(XDP_PASS);
    // A UDP datagram from a denied source (IP protocol 17) and an ARP frame pass.
    const udp = syn('198.51.100.1');
    udp[14 + 9] = 17;
    expect(prog.testRun({ data: udp }).retval).toBe(XDP_PASS);
    const arp = new Uint8Array(60);
    arp.set([0x08, 0x06], 12);
    expect(prog.testRun({ data: arp }).retval).toBe(XDP_PASS);
    expect(prog.testRun({ data: new Uint8Array(14) }).retval).toBe(XDP_PASS); // a bare Ethernet header

    const s = guard.stats();
    expect(s.dropped).toBe(2n);
    expect(s.packets).toBe(8n);
    expect(s.passed).toBe(6n);
    expect(s.matched).toBe(3n);
    expect(s.entries).toBe(3);
    const byCidr = Object.fromEntries(guard.list().map((e) => [e.cidr, e]));
    expect(Object.keys(byCidr).sort()).toEqual(['198.51.100.0/24', '198.51.100.7/32', '2001:db8:bad::/48']);
    expect(byCidr['198.51.100.0/24']!.droppedPackets).toBe(1n);
    expect(byCidr['198.51.100.0/24']!.droppedBytes).toBe(BigInt(syn('198.51.100.1').length));
    expect(byCidr['198.51.100.7/32']!.action).toBe('allow');
    expect(byCidr['198.51.100.7/32']!.passedPackets).toBe(1n);
    expect(guard.remove('198.51.100.0/24')).toBe(true);
    expect(guard.remove('198.51.100.0/24')).toBe(false);
    expect(prog.testRun({ data: syn('198.51.100.1') }).retval).toBe(XDP_PASS);
    expect(guard.size).toBe(2);
  });

  it('SYN-only mode lets established traffic from a denied source through', () => {
    using guard = Guard.start({ interfaces: [], synOnly: true });
    const prog = guard.program;
    guard.deny('198.51.100.0/24');
    expect(prog.testRun({ data: syn('198.51.100.1') }).retval).toBe(XDP_DROP);
    const ack = tcpFrame({ src: '198.51.100.1', dst: '192.0.2.254', sport: 40000, dport: 80, flags: { ack: true } });
    expect(prog.testRun({ data: ack }).retval).toBe(XDP_PASS);
  });

  it('a token bucket passes the burst, then the rate', async () => {
    using guard = Guard.start({ interfaces: [] });
    const prog = guard.program;
    guard.deny('198.51.100.9', { action: { ratePerSec: 20, burst: 10 } });
    const r = prog.testRun({ data: syn('198.51.100.9'), repeat: 1000 }); // ~1 ms: the burst only
    expect([XDP_PASS, XDP_DROP]).toContain(r.retval);
    let e = guard.get('198.51.100.9')!;
    expect(e.action).toBe('rate');
    expect(e.ratePerSec).toBe(20);
    expect(e.burst).toBe(10);
    expect(e.passedPackets).toBeGreaterThanOrEqual(10n);
    expect(e.passedPackets).toBeLessThanOrEqual(11n);
    expect(e.passedPackets + e.droppedPackets).toBe(1000n);
    await new Promise((res) => setTimeout(res, 500)); // refills ~10 tokens
    prog.testRun({ data: syn('198.51.100.9'), repeat: 1000 });
    const before = e.passedPackets;
    e = guard.get('198.51.100.9')!;
    const refilled = Number(e.passedPackets - before);
    expect(refilled).toBeGreaterThanOrEqual(9);
    expect(refilled).toBeLessThanOrEqual(13);
    // Changing the action to drop keeps the counters.
    guard.deny('198.51.100.9');
    expect(guard.get('198.51.100.9')!.passedPackets).toBe(e.passedPackets);
    expect(prog.testRun({ data: syn('198.51.100.9') }).retval).toBe(XDP_DROP);
  });

  it('expires entries after their TTL, keeps the later expiry, emits expire', async () => {
    using guard = Guard.start({ interfaces: [] });
    const prog = guard.program;
    const expired: string[] = [];
    const expiredAt: number[] = [];
    guard.on('expire', (e: { cidr: string }) => { expired.push(e.cidr); expiredAt.push(Date.now()); });
    const t0 = Date.now();
    guard.deny('198.51.100.1', { ttlMs: 150 });
    guard.deny('198.51.100.2', { ttlMs: 150 });
    guard.deny('198.51.100.2', { ttlMs: 50 });  // shorter: keeps 150
    guard.deny('198.51.100.3', { ttlMs: 100 });
    guard.deny('198.51.100.3');                  // no TTL: permanent
    expect(guard.get('198.51.100.3')!.expiresAt).toBeUndefined();
    expect(guard.get('198.51.100.2')!.expiresAt).toBeGreaterThanOrEqual(t0 + 150);
    expect(prog.testRun({ data: syn('198.51.100.1') }).retval).toBe(XDP_DROP);
    await eventually(() => guard.size === 1, 2000, 'TTL expiry');
    expect(expired.sort()).toEqual(['198.51.100.1/32', '198.51.100.2/32']);
    // Nothing expired early, however slow the lines above ran: both went 150 ms or more after t0.
    for (const at of expiredAt) expect(at).toBeGreaterThanOrEqual(t0 + 150);
    expect(prog.testRun({ data: syn('198.51.100.1') }).retval).toBe(XDP_PASS);
    expect(guard.stats().expired).toBe(2);
  });

  it('denyMany lists in bulk, updates what is listed already, honours the TTL', async () => {
    using guard = Guard.start({ interfaces: [] });
    const prog = guard.program;
    guard.deny('198.51.100.1', { action: { ratePerSec: 5 } });
    const list = Array.from({ length: 1000 }, (_, i) => `198.51.${100 + (i >> 8)}.${i & 255}`);
    expect(guard.denyMany([...list, '2001:db8::/64', '203.0.113.77/24'])).toEqual({ added: 1001, updated: 1 });
    expect(guard.size).toBe(1002);
    expect(guard.get('198.51.100.1')!.action).toBe('drop');
    expect(guard.get('198.51.103.231')!.action).toBe('drop');
    expect(guard.get('203.0.113.0/24')!.prefixLen).toBe(24);
    expect(guard.get('203.0.113.0/25')).toBeUndefined(); // covered, but not an entry
    expect(prog.testRun({ data: syn('198.51.102.9') }).retval).toBe(XDP_DROP);
    expect(prog.testRun({ data: syn('203.0.113.200') }).retval).toBe(XDP_DROP);
    expect(prog.testRun({ data: syn('2001:db8::9') }).retval).toBe(XDP_DROP);
    expect(prog.testRun({ data: syn('198.51.104.1') }).retval).toBe(XDP_PASS);
    expect(guard.denyMany(['198.18.77.0/28', '198.18.77.16/28'], { ttlMs: 100 })).toEqual({ added: 2, updated: 0 });
    await eventually(() => guard.size === 1002, 2000, 'bulk entries to expire');
    expect(() => guard.denyMany(['10.0.0.1', '300.1.1.1'])).toThrow(/bad IPv4|address/);
  });

  it('a protected port passes its budget, then answers SYNs with a SYN cookie (or drops them before 6.0)', () => {
    using guard = Guard.start({ interfaces: [] });
    const prog = guard.program;
    expect(guard.protectPort(8443, { ratePerSec: 1, burst: 1 })).toMatchObject({ port: 8443, mode: guard.synCookies ? 'cookie' : 'drop', ratePerSec: 1, burst: 1 });
    if (!guard.synCookies) expect(guard.protectedPorts()[0]!.fallback).toMatch(/6\.0|rejected/);
    for (const [src, dst] of [['198.51.100.1', '192.0.2.254'], ['2001:db8::1', '2001:db8::ff']] as const) {
      const v6 = src.includes(':');
      const frame = tcpFrame({ src, dst, sport: 40000, dport: 8443, seq: 0xfffffff0, flags: { syn: true }, options: { mss: 1400, sackPermitted: true, timestamps: [1, 0], wscale: 7 } });
      const first = prog.testRun({ data: frame, dataOutSize: 256 });
      expect(first.retval).toBe(v6 ? (guard.synCookies ? XDP_TX : XDP_DROP) : XDP_PASS); // the budget's burst: one SYN
      const r = prog.testRun({ data: frame, dataOutSize: 256 });
      if (!guard.synCookies) { expect(r.retval).toBe(XDP_DROP); continue; }
      expect(r.retval).toBe(XDP_TX);
      const out = r.data!;
      const ipLen = v6 ? 40 : 20;
      expect(out.length).toBe(14 + ipLen + 24);
      // Ethernet addresses swapped.
      expect([...out.subarray(0, 6)]).toEqual([...frame.subarray(6, 12)]);
      const ip = out.subarray(14, 14 + ipLen);
      const tcp = out.subarray(14 + ipLen);
      const t = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength);
      // Addresses and ports swapped; SYN-ACK; ack = the SYN's seq + 1 (wrapping); our MSS only.
      expect([...ip.subarray(v6 ? 8 : 12, v6 ? 24 : 16)]).toEqual([...frame.subarray(14 + (v6 ? 24 : 16), 14 + (v6 ? 40 : 20))]);
      expect(t.getUint16(0)).toBe(8443);
      expect(t.getUint16(2)).toBe(40000);
      expect(t.getUint32(8)).toBe(0xfffffff1);
      expect(tcp[12]).toBe(6 << 4);
      expect(tcp[13]).toBe(0x12);
      expect([tcp[20], tcp[21]]).toEqual([2, 4]);
      expect(t.getUint16(22)).toBe(v6 ? 1440 : 1460); // no interface: MTU 1500
      // Checksums: IPv4 header, TCP with its pseudo-header.
      const pseudo = new Uint8Array(v6 ? 40 : 12);
      pseudo.set(ip.subarray(v6 ? 8 : 12, v6 ? 40 : 20), 0);
      if (v6) { pseudo[35] = 24; pseudo[39] = 6; } else { pseudo[9] = 6; pseudo[11] = 24; }
      if (!v6) expect(onesSum(ip)).toBe(0xffff);
      expect(onesSum(pseudo, tcp)).toBe(0xffff);
      // The cookie depends on the connection: another source port, another cookie.
      const other = prog.testRun({ data: tcpFrame({ src, dst, sport: 40001, dport: 8443, seq: 0xfffffff0, flags: { syn: true }, options: { mss: 1400 } }), dataOutSize: 256 });
      expect(new DataView(other.data!.buffer).getUint32(14 + ipLen + 4)).not.toBe(t.getUint32(4));
      // A SYN without options gets a SYN-ACK without options (no room for ours).
      const bare = prog.testRun({ data: tcpFrame({ src, dst, sport: 40002, dport: 8443, flags: { syn: true } }), dataOutSize: 256 });
      expect(bare.retval).toBe(XDP_TX);
      expect(bare.data!.length).toBe(14 + ipLen + 20);
    }
    // Established traffic and other ports pass; an unprotected port is left alone.
    const ack = tcpFrame({ src: '198.51.100.1', dst: '192.0.2.254', sport: 40000, dport: 8443, flags: { ack: true } });
    expect(prog.testRun({ data: ack }).retval).toBe(XDP_PASS);
    expect(prog.testRun({ data: tcpFrame({ src: '198.51.100.1', dst: '192.0.2.254', sport: 40000, dport: 8444, flags: { syn: true } }) }).retval).toBe(XDP_PASS);
    // A listed source is decided by its entry, not the port: allow passes, drop drops.
    guard.allow('198.51.100.50');
    expect(prog.testRun({ data: tcpFrame({ src: '198.51.100.50', dst: '192.0.2.254', sport: 1, dport: 8443, flags: { syn: true } }) }).retval).toBe(XDP_PASS);
    const s = guard.stats();
    expect(s.ports).toBe(1);
    expect(s.portPassed).toBe(1n);
    const entry = guard.protectedPorts()[0]!;
    expect(entry.passedPackets).toBe(1n);
    expect(guard.synCookies ? entry.cookies : entry.droppedPackets).toBe(guard.synCookies ? 7n : 3n);
    expect(s.packets).toBe(s.passed + s.dropped + s.cookies);
    // 'all' covers ports without an entry of their own; unprotecting stops it.
    guard.protectPort('all', { ratePerSec: 1, burst: 1, synCookies: false });
    const syn9 = tcpFrame({ src: '198.51.100.1', dst: '192.0.2.254', sport: 40000, dport: 9, flags: { syn: true } });
    expect(prog.testRun({ data: syn9 }).retval).toBe(XDP_PASS);
    expect(prog.testRun({ data: syn9 }).retval).toBe(XDP_DROP);
    expect(guard.unprotectPort('all')).toBe(true);
    expect(guard.unprotectPort(8443)).toBe(true);
    expect(guard.unprotectPort(8443)).toBe(false);
    expect(prog.testRun({ data: syn9 }).retval).toBe(XDP_PASS);
    expect(guard.stats().ports).toBe(0);
    expect(() => guard.protectPort(0)).toThrow(/port must be 1\.\.65535 or 'all'/);
    expect(() => guard.protectPort(70000)).toThrow(/port must be/);
    expect(() => guard.protectPort(80, { ratePerSec: 0 })).toThrow(/ratePerSec/);
  });

  it('a port protection expires after its TTL', async () => {
    using guard = Guard.start({ interfaces: [] });
    const gone: Array<number | 'all'> = [];
    guard.on('expirePort', (p: { port: number | 'all' }) => gone.push(p.port));
    guard.protectPort(8080, { ttlMs: 100 });
    expect(guard.protectedPorts()[0]!.expiresAt).toBeGreaterThan(Date.now() - 1);
    await eventually(() => guard.stats().ports === 0, 2000, 'the port protection to expire');
    expect(gone).toEqual([8080]);
    const syn = tcpFrame({ src: '198.51.100.1', dst: '192.0.2.254', sport: 40000, dport: 8080, flags: { syn: true } });
    expect(guard.program.testRun({ data: syn }).retval).toBe(XDP_PASS);
    expect(guard.stats().portMatched).toBe(0n);
  });

  it('refuses unsafe denies unless forced', () => {
    const saved = process.env['SSH_CONNECTION'];
    process.env['SSH_CONNECTION'] = '203.0.113.9 52100 192.0.2.1 22';
    try {
      using guard = Guard.start({ interfaces: [] });
      expect(() => guard.deny('0.0.0.0/0')).toThrow(GuardSafetyError);
      expect(() => guard.deny('0.0.0.0/0')).toThrow(/^refusing to deny 0\.0\.0\.0\/0: it covers every IPv4 address \(pass --force, or force: true, to deny it anyway\)$/);
      expect(() => guard.deny('::/0', { action: { ratePerSec: 10 } })).toThrow(/every IPv6 address/);
      expect(() => guard.deny('203.0.113.0/24')).toThrow(/203\.0\.113\.9, the client of this SSH session/);
      expect(() => guard.denyMany(['198.51.100.1', '203.0.113.9/32'])).toThrow(/SSH session/);
      expect(guard.get('198.51.100.1')).toBeDefined(); // listed before the refused one
      expect(guard.get('203.0.113.9')).toBeUndefined();
      const gw = defaultGateways()[0];
      if (gw) expect(() => guard.deny(gw.address)).toThrow(/default gateway/);
      expect(guard.deny('0.0.0.0/0', { force: true }).prefixLen).toBe(0);
      expect(guard.denyMany(['203.0.113.9'], { force: true })).toEqual({ added: 1, updated: 0 });
    } finally {
      if (saved === undefined) delete process.env['SSH_CONNECTION'];
      else process.env['SSH_CONNECTION'] = saved;
    }
  });

  it('rejects bad input', () => {
    using guard = Guard.start({ interfaces: [] });
    expect(() => guard.deny('10.0.0.0/33')).toThrow(/prefix/);
    expect(() => guard.deny('nope')).toThrow(/address/);
    expect(() => guard.deny('10.0.0.1', { action: { ratePerSec: 0 } })).toThrow(/ratePerSec/);
    expect(() => guard.deny('10.0.0.1', { ttlMs: -1 })).toThrow(/ttlMs/);
    guard.close();
    expect(() => guard.deny('10.0.0.1')).toThrow(/closed/);
  });
});

/** Connects from `local` inside the namespace, n times `spacing` ms apart, each attempt given
 * `timeout` ms; prints every attempt: when it started and how long its socket lived (ms, from
 * the start of the client), and whether it connected. */
const CLIENT = `
const net = require('node:net');
const [host, port, local, n, timeout, spacing] = process.argv.slice(1);
const t0 = performance.now();
const attempts = [];
let left = Number(n);
const done = () => { if (--left === 0) { console.log(JSON.stringify(attempts)); process.exit(0); } };
for (let i = 0; i < Number(n); i++) setTimeout(() => {
  const a = { start: performance.now() - t0, ms: 0, ok: false };
  attempts.push(a);
  const end = (ok) => { a.ms = performance.now() - t0 - a.start; a.ok = ok; done(); };
  const s = net.connect({ host, port: Number(port), localAddress: local });
  const t = setTimeout(() => { s.destroy(); end(false); }, Number(timeout));
  s.on('connect', () => { clearTimeout(t); s.destroy(); end(true); });
  s.on('error', () => { clearTimeout(t); end(false); });
}, i * Number(spacing));
`;

interface Attempt { start: number; ms: number; ok: boolean }

async function attemptsFrom(tn: TestNet, host: string, port: number, local: string, n = 1, timeoutMs = 700, spacingMs = 0): Promise<Attempt[]> {
  const child = spawn('ip', ['netns', 'exec', tn.ns, process.execPath, '-e', CLIENT, host, String(port), local, String(n), String(timeoutMs), String(spacingMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`client in ${tn.ns} failed (${code}): ${err}`);
  return JSON.parse(out) as Attempt[];
}

async function connectFrom(tn: TestNet, host: string, port: number, local: string, n = 1, timeoutMs = 700, spacingMs = 0): Promise<{ ok: number; fail: number }> {
  const attempts = await attemptsFrom(tn, host, port, local, n, timeoutMs, spacingMs);
  const ok = attempts.filter((a) => a.ok).length;
  return { ok, fail: attempts.length - ok };
}

/**
 * How many SYNs an attempt whose socket lived `ms` may have sent: the first, then one per
 * retransmission timeout that ran out, 1 s after the SYN and then exponentially (1, 3, 7 s
 * after it) or, with net.ipv4.tcp_syn_linear_timeouts, every second. [fewest, most]: the
 * fewest counts the exponential timeouts well inside the lifetime, the most the linear ones
 * up to its end. On an unloaded machine the tests' lifetimes are far from those points and
 * both are the same; under emulation a late timer makes a socket live longer.
 */
function synsSent(ms: number): [number, number] {
  let fewest = 1;
  for (let k = 1; (2 ** k - 1) * 1000 + 250 <= ms; k++) fewest++;
  return [fewest, 1 + Math.floor((ms + 10) / 1000)];
}

function synRange(attempts: Attempt[]): [number, number] {
  return attempts.reduce<[number, number]>((r, a) => { const [lo, hi] = synsSent(a.ms); return [r[0] + lo, r[1] + hi]; }, [0, 0]);
}

describe.skipIf(!enabled)('guard on a veth into a test namespace (real traffic)', () => {
  let tn: TestNet;
  let second4: string, second6: string;
  let port: number;
  const servers: net.Server[] = [];

  beforeAll(async () => {
    tn = createTestNet();
    second4 = tn.nsV4.replace(/\.2$/, '.3');
    second6 = tn.nsV6.replace(/::2$/, '::3');
    execFileSync('ip', ['-n', tn.ns, 'addr', 'add', `${second4}/24`, 'dev', tn.nsIf]);
    execFileSync('ip', ['-n', tn.ns, '-6', 'addr', 'add', `${second6}/64`, 'dev', tn.nsIf, 'nodad']);
    port = freePort();
    const refusing = { backlog: 1024, connections: 'destroy' } as const;
    servers.push(await listen(port, tn.hostV4, refusing), await listen(port, tn.hostV6, refusing));
    // Neighbours resolved before any guard is attached.
    expect(await connectFrom(tn, tn.hostV4, port, second4)).toEqual({ ok: 1, fail: 0 });
    expect(await connectFrom(tn, tn.hostV6, port, second6)).toEqual({ ok: 1, fail: 0 });
  });
  afterAll(() => {
    for (const s of servers) s.close();
    tn?.destroy();
  });

  for (const family of ['IPv4', 'IPv6'] as const) {
    it(`drops the SYNs of a listed ${family} source and not the other's; counters match`, async () => {
      const host = family === 'IPv4' ? tn.hostV4 : tn.hostV6;
      const good = family === 'IPv4' ? tn.nsV4 : tn.nsV6;
      const bad = family === 'IPv4' ? second4 : second6;
      using guard = Guard.start({ interfaces: [tn.hostIf], mode: 'native' });
      expect(attachedPrograms(tn.hostIf).map((p) => p.name)).toEqual([guard.program.name]);
      guard.deny(bad);
      const [fromGood, badAttempts] = await Promise.all([connectFrom(tn, host, port, good, 3), attemptsFrom(tn, host, port, bad, 3, 1500)]);
      expect(fromGood).toEqual({ ok: 3, fail: 0 });
      expect(badAttempts.filter((a) => a.ok)).toEqual([]);
      const entry = guard.get(bad)!;
      const stats = guard.stats();
      // Three SYNs plus one retransmission each (after 1 s, within the 1.5 s timeout); more
      // when a slow machine fires the client's timers late.
      const [fewest, most] = synRange(badAttempts);
      expect(Number(entry.droppedPackets)).toBeGreaterThanOrEqual(Math.max(6, fewest));
      expect(Number(entry.droppedPackets)).toBeLessThanOrEqual(Math.max(6, most));
      expect(stats.dropped).toBe(entry.droppedPackets);
      expect(stats.droppedBytes).toBe(entry.droppedBytes);
      const synFrame = family === 'IPv4' ? 14 + 20 + 40 : 14 + 40 + 40;
      expect(entry.droppedBytes).toBe(entry.droppedPackets * BigInt(synFrame));
      expect(stats.passed).toBeGreaterThanOrEqual(3n * 3n); // SYN, ACK, RST at least per good connection
      expect(stats.packets).toBe(stats.passed + stats.dropped);
      guard.close();
      expect(attachedPrograms(tn.hostIf)).toEqual([]);
      expect(await connectFrom(tn, host, port, bad)).toEqual({ ok: 1, fail: 0 });
    });
  }

  it('a rate limit lets about the rate through', async () => {
    using guard = Guard.start({ interfaces: [tn.hostIf], synOnly: true });
    guard.deny(`${second4}/32`, { action: { ratePerSec: 20, burst: 5 } });
    // 150 attempts paced 10 ms apart (about 1.5 s, longer on a loaded or emulated machine):
    // the burst plus 20/s of the time they took, about 35.
    const timeoutMs = 600;
    const [attempts, good] = await Promise.all([attemptsFrom(tn, tn.hostV4, port, second4, 150, timeoutMs, 10), connectFrom(tn, tn.hostV4, port, tn.nsV4, 20, 600, 50)]);
    expect(good).toEqual({ ok: 20, fail: 0 });
    expect(attempts).toHaveLength(150);
    const ok = attempts.filter((a) => a.ok).length;
    const entry = guard.get(second4)!;
    const passed = Number(entry.passedPackets);
    // The accounting: every SYN of the source is counted once, passed or dropped. A socket
    // lives less than the 1 s retransmission timeout, so that is one per attempt, and a
    // connection succeeded exactly when its SYN passed. Under emulation the client's timers
    // fire late: a socket may live long enough to retransmit, and a connection may complete
    // after its attempt was given up (counted as failed though its SYN passed).
    const [fewest, most] = synRange(attempts);
    const late = attempts.filter((a) => !a.ok && a.ms > timeoutMs + 100).length;
    expect(passed + Number(entry.droppedPackets)).toBeGreaterThanOrEqual(fewest);
    expect(passed + Number(entry.droppedPackets)).toBeLessThanOrEqual(most);
    expect(passed).toBeGreaterThanOrEqual(ok);
    expect(passed).toBeLessThanOrEqual(ok + late);
    expect(guard.stats().ratePassed).toBe(entry.passedPackets);
    // The rate: the burst plus 20/s from the first SYN to the last (a retransmission counts
    // from when it may have been sent), with 11 tokens of slack for pacing jitter (at the
    // nominal 1.49 s: 45).
    const first = Math.min(...attempts.map((a) => a.start));
    const last = Math.max(...attempts.map((a) => a.start + (synsSent(a.ms)[1] > 1 ? a.ms : 0)));
    expect(passed).toBeLessThanOrEqual(5 + Math.floor((20 * (last - first)) / 1000) + 11);
    expect(ok).toBeGreaterThanOrEqual(15);
  });

  it('TTL expiry lifts the block', async () => {
    using guard = Guard.start({ interfaces: [tn.hostIf] });
    // The blocked attempt's client is a node process started in the namespace: seconds to
    // start in a loaded emulated guest, where a 1.5 s entry expired before its SYN was sent.
    const ttlMs = 8000;
    guard.deny(second6, { ttlMs });
    expect(await connectFrom(tn, tn.hostV6, port, second6, 1, 500)).toEqual({ ok: 0, fail: 1 });
    await eventually(() => guard.size === 0, ttlMs + 5000, 'the entry to expire');
    expect(await connectFrom(tn, tn.hostV6, port, second6, 1, 1500)).toEqual({ ok: 1, fail: 0 });
    expect(guard.stats().expired).toBe(1);
  });

  it('tcpscope guard refuses a deny that cuts the host off, in one line, before attaching; --force overrides', async () => {
    const run = async (args: string[]): Promise<{ code: number; err: string }> => {
      const err: string[] = [];
      const io = { out: { write: () => true }, err: { write: (s: string) => err.push(s) } } as unknown as { out: NodeJS.WritableStream; err: NodeJS.WritableStream };
      return { code: await main(['guard', '-i', tn.hostIf, ...args], io), err: err.join('') };
    };
    const everything = await run(['--deny', '10.9.0.0/16,0.0.0.0/0']);
    expect(everything.code).toBe(2);
    expect(everything.err).toBe('tcpscope guard: refusing to deny 0.0.0.0/0: it covers every IPv4 address (pass --force, or force: true, to deny it anyway)\n');
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
    expect((await run(['--deny', '::/0'])).err).toMatch(/^tcpscope guard: refusing to deny ::\/0: it covers every IPv6 address .*\n$/);
    const bad = await run(['--deny', '10.0.0.0/40']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^tcpscope guard: bad --deny '10\.0\.0\.0\/40': bad prefix length.*\n$/);
    expect(bad.err.split('\n')).toHaveLength(2);
    expect((await run(['--protect-port', '0'])).err).toMatch(/bad --protect-port '0'/);
    expect((await run(['--port-rate', '5/s', '--deny', '10.9.0.1'])).err).toMatch(/--port-rate needs --protect-port/);
    // The established peer: a connection to a local listener held open while denying its /24.
    const kept: net.Socket[] = [];
    const keeper = net.createServer((s) => { s.on('error', () => {}); kept.push(s); });
    keeper.listen(0, tn.hostV4);
    await once(keeper, 'listening');
    const keptPort = (keeper.address() as net.AddressInfo).port;
    const peer = net.connect({ host: tn.hostV4, port: keptPort });
    await once(peer, 'connect');
    try {
      const refused = await run(['--deny', `${tn.hostV4.replace(/\.1$/, '.0')}/24`]);
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(new RegExp(`peer of an established connection to local port ${keptPort}`));
    } finally {
      peer.destroy();
      for (const k of kept) k.destroy();
      keeper.close();
    }
    expect((await run(['--deny', '0.0.0.0/0', '--force', '--duration', '200ms'])).code).toBe(0);
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
  });

  it('tcpscope guard --json prints counters and a summary, then detaches', async () => {
    const out: string[] = [], err: string[] = [];
    const io = { out: { write: (s: string) => out.push(s) }, err: { write: (s: string) => err.push(s) } } as unknown as { out: NodeJS.WritableStream; err: NodeJS.WritableStream };
    const run = main(['guard', '-i', tn.hostIf, '--deny', `${second4},${second6}/128`, '--interval', '300ms', '--duration', '6s', '--json'], io); // long enough for a slow load, attach and client
    await eventually(() => attachedPrograms(tn.hostIf).length === 1, 3000, 'guard attached');
    // The first interval line comes after the entries are listed.
    await eventually(() => out.join('').includes('"type":"interval"'), 5000, 'the first interval');
    const attempts = await attemptsFrom(tn, tn.hostV4, port, second4, 2, 500);
    expect(await run).toBe(0);
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.at(-1)!;
    expect(summary['type']).toBe('summary');
    // Two SYNs (more if a slow machine fired the client's 500 ms timers a second late).
    const [fewest, most] = synRange(attempts);
    expect(summary['dropped']).toBeGreaterThanOrEqual(fewest);
    expect(summary['dropped']).toBeLessThanOrEqual(most);
    expect((summary['entries'] as Array<{ cidr: string; droppedPackets: number }>).find((e) => e.cidr === `${second4}/32`)?.droppedPackets).toBe(summary['dropped']);
    expect(lines.some((l) => l['type'] === 'interval')).toBe(true);
  });
});

describe.skipIf(!enabled)('guard under a random-source SYN flood (hping3 over a veth)', () => {
  let tn: TestNet;
  let fnet: FloodNet;
  let client: string;
  let port: number;
  let server: net.Server;

  beforeAll(async () => {
    ({ tn, fnet, client, port, server } = await floodTarget());
    expect(await connectFrom(tn, tn.hostV4, port, client)).toEqual({ ok: 1, fail: 0 });
  });
  afterAll(() => {
    server?.close();
    fnet?.destroy();
    tn?.destroy();
  });

  it('answers the flood with SYN cookies at XDP; a legitimate client connects during it; nothing stays attached', async () => {
    const guard = Guard.start({ interfaces: [tn.hostIf] });
    const flood = startSynFlood(tn, tn.hostV4, port, 30);
    try {
      const entry = guard.protectPort(port, { ratePerSec: 100 });
      const answered = guard.synCookies ? 'cookies' : 'portDropped';
      // The flood is under way once the budget is spent and SYNs are answered (or dropped).
      await eventually(() => guard.stats()[answered] > 2000n, 15000, `the flood's SYNs to be ${guard.synCookies ? 'answered' : 'dropped'}`);
      if (guard.synCookies) {
        expect(entry.mode).toBe('cookie');
        // Ten connections, 100 ms apart, each given 3 s (a lost SYN costs 1 s).
        const attempts = await attemptsFrom(tn, tn.hostV4, port, client, 10, 3000, 100);
        expect(flood.child.exitCode).toBeNull(); // still flooding
        expect(attempts.filter((a) => a.ok)).toHaveLength(10);
        const s = guard.stats();
        // The budget let 100/s (plus its burst) reach the kernel; everything else was answered here.
        expect(s.cookies).toBeGreaterThan(10n * s.portPassed / 10n);
        expect(s.portDropped).toBe(0n);
      } else {
        // Before 6.0: the over-budget SYNs are dropped, the fallback says why.
        expect(guard.protectedPorts()[0]!.fallback).toMatch(/6\.0|rejected/);
      }
    } finally {
      flood.stop();
      await flood.done;
      guard.close();
    }
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
    // Unprotected again: the kernel answers.
    expect(await connectFrom(tn, tn.hostV4, port, client, 1, 3000)).toEqual({ ok: 1, fail: 0 });
  }, 90_000);
});
