// SPDX-License-Identifier: MIT
// Every command as a user who is not root and holds exactly CAP_BPF, CAP_PERFMON and
// CAP_NET_ADMIN (what the README says suffices), run through setpriv as an administrator
// would grant them: tracefs is root-only, so tracepoints attach by BTF id (tp_btf), and the
// probes still see real loopback traffic. Without the capabilities, the failure is one line
// naming only the ones missing.
import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bpfAvailable, ROOT } from './helpers/bpf';
import { kernelAtLeast } from '../lib/kernel/version';
import { unusedPort as freePort } from './helpers/listen';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
const isRoot = process.getuid?.() === 0;
const enabled = bpfAvailable('least privilege') && isRoot && SETPRIV !== undefined;
if (!enabled && process.env['TCPSCOPE_REQUIRE_BPF'] === '1') throw new Error('least-privilege: needs root (to drop to nobody) and setpriv (util-linux)');

/** The command line that runs node as nobody with exactly `caps` (e.g. ['bpf', 'perfmon']). */
function asNobody(caps: string[], args: string[]): [string, string[]] {
  const set = caps.map((c) => `+${c}`).join(',');
  const capArgs = caps.length ? [`--inh-caps=${set}`, `--ambient-caps=${set}`] : ['--inh-caps=-all'];
  const argv = [SETPRIV!, '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...capArgs, process.execPath, CLI, ...args];
  // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, which an unprivileged user cannot
  // raise: there the administrator raises it (LimitMEMLOCK=infinity); later kernels use memcg.
  return kernelAtLeast(5, 11) ? [argv[0]!, argv.slice(1)] : ['prlimit', ['--memlock=unlimited:unlimited', ...argv]];
}

const CAPS = ['bpf', 'perfmon', 'net_admin'];


/** Starts `args` as nobody; resolves once `ready` appears on stderr/stdout. */
function start(args: string[], ready: RegExp): { done: Promise<{ code: number | null; out: string; err: string }>; ready: Promise<void>; kill(): void } {
  const [cmd, argv] = asNobody(CAPS, args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  let onReady: () => void = () => {};
  const readyP = new Promise<void>((resolve) => { onReady = resolve; });
  const check = (): void => { if (ready.test(out + err)) onReady(); };
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); check(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); check(); });
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, out, err }));
  return { done, ready: Promise.race([readyP, done.then((r) => { throw new Error(`exited before ready (${r.code}): ${r.err}`); })]), kill: () => child.kill('SIGINT') };
}

/** A loopback connection carrying `bytes` to a server on `port`, closed by both sides. */
async function loopbackConnection(port: number, bytes: number): Promise<void> {
  const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.end(Buffer.alloc(bytes, 1));
  c.resume();
  await once(c, 'close');
  await new Promise<void>((r) => server.close(() => r()));
}

describe.skipIf(!enabled)('as nobody with CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN', () => {
  it('the setup is what it claims: not root, exactly the three capabilities', () => {
    const [cmd, argv] = asNobody(CAPS, []);
    const probe = spawnSync(cmd, [...argv.slice(0, argv.indexOf(process.execPath)), process.execPath, '-e',
      "process.stdout.write(require('fs').readFileSync('/proc/self/status','utf8'))"], { encoding: 'utf8' });
    expect(probe.stdout).toMatch(/^Uid:\s+65534\s+65534/m);
    // CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39): 0xc000001000.
    expect(/^CapEff:\s+([0-9a-f]+)/m.exec(probe.stdout)?.[1]).toBe('000000c000001000');
  });

  it('conns reports a real loopback connection (tp_btf, no tracefs)', async () => {
    const port = await freePort();
    // conns prints its header once attached.
    const run = start(['conns', '-P', String(port), '-c', '2', '--duration', '20s'], /^PID\s+COMM/m);
    await run.ready;
    await loopbackConnection(port, 1234);
    const { code, out, err } = await run.done;
    expect(err).not.toMatch(/^tcpscope conns: /m);
    expect(code).toBe(0);
    // PID COMM DIR LOCAL REMOTE RX_BYTES TX_BYTES MS
    const rows = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r[2]).sort()).toEqual(['active', 'passive']);
    const passive = rows.find((r) => r[2] === 'passive')!;
    expect(passive[0]).toBe(String(process.pid));
    expect(passive[3]).toBe(`127.0.0.1:${port}`);
    expect(passive[5]).toBe('1234');
  }, 30_000);

  it('rtt takes samples of a real loopback connection', async () => {
    const port = await freePort();
    const run = start(['rtt', '-P', String(port), '--duration', '20s'], /tracing/i);
    await run.ready;
    await loopbackConnection(port, 200_000);
    run.kill();
    const { code, err } = await run.done;
    expect(code).toBe(0);
    expect(Number(/(\d+) samples received, 0 lost/.exec(err)?.[1])).toBeGreaterThan(0);
  }, 30_000);

  // Each runs for a second and must end cleanly (attach, read, detach) without an error line.
  it.each([
    ['retrans'], ['resets'], ['drops'], ['timeline'],
    ['packets', '-i', 'lo'], ['top', '-i', 'lo'], ['flows', '-i', 'lo'], ['detect', '-i', 'lo'],
    ['watch', '-i', 'lo', '--no-demo'],
    // 192.0.2.0/24 (TEST-NET-1) never reaches lo: nothing real is dropped.
    ['guard', '-i', 'lo', '--deny', '198.51.100.0/24'],
  ])('%s works', (...args: string[]) => {
    const [cmd, argv] = asNobody(CAPS, [...args, '--duration', '1s']);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).not.toMatch(new RegExp(`^tcpscope ${args[0]}: |^\\s+at |Error: `, 'm'));
    expect(r.status, r.stderr).toBe(0);
  }, 40_000);

  it('serve runs its probes and serves /metrics', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-lp-${process.pid}-`));
    fs.chmodSync(dir, 0o755);
    const config = path.join(dir, 'serve.json');
    fs.writeFileSync(config, JSON.stringify({ interfaces: ['lo'], exporters: { prometheus: { port: 0 } } }));
    fs.chmodSync(config, 0o644);
    const run = start(['serve', '--config', config, '--duration', '80s'], /metrics at (http\S+)/);
    try {
      await run.ready;
    } finally {
      run.kill();
    }
    const { code, err } = await run.done;
    fs.rmSync(dir, { recursive: true, force: true });
    expect(err).toMatch(/probes connections, retransmits, resets, drops, rtt, packets/);
    expect(err).not.toMatch(/stopped: |unavailable/);
    expect(code).toBe(0);
  }, 90_000);

  it('gen-types needs no privilege at all', () => {
    const [cmd, argv] = asNobody([], ['gen-types', path.join(ROOT, 'build', 'bpf', 'conns.bpf.o'), '-t', 'conn_event']);
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/conn_event/i);
  });
});

describe.skipIf(!enabled)('without the capabilities', () => {
  it.each([
    [[], /this process lacks CAP_BPF and CAP_PERFMON and CAP_NET_ADMIN: run with sudo, or grant them/],
    [['bpf'], /this process lacks CAP_PERFMON and CAP_NET_ADMIN: run with sudo, or grant them \(e\.g\. `setcap cap_perfmon,cap_net_admin\+ep/],
    [['bpf', 'perfmon'], /this process lacks CAP_NET_ADMIN: run with sudo, or grant it/],
  ])('with %j: one line naming only what is missing', (caps, says) => {
    const [cmd, argv] = asNobody(caps as string[], ['packets', '-i', 'lo', '--duration', '1s']);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('tcpscope packets: '))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(says);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    for (const has of caps as string[]) expect(lines.at(-1)).not.toMatch(new RegExp(`lacks[^:]*CAP_${has.toUpperCase()}`));
  }, 40_000);

  it('watch --demo as a non-root user says the demo needs root, in one line', () => {
    const [cmd, argv] = asNobody(CAPS, ['watch', '-i', 'lo', '--demo', '--duration', '3s']);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toMatch(/demo failed: the demo needs root \(CAP_SYS_ADMIN, to create its network namespace\)/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  }, 40_000);
});
