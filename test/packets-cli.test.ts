// SPDX-License-Identifier: MIT
// `tcpscope packets` run as a process from the compiled dist (built here with
// `node scripts/build.js ts`), on real loopback traffic: lines, -c, --json, -w read back
// by tcpdump, Ctrl-C summary, usage errors, nothing left attached.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { createTestNet } from './helpers/netns';
import { connectionsSettled, loopbackExchange } from './helpers/listen';
import { freePort } from './helpers/tcpprobe';
import { CLI, CliRun, ready as started, track as trackCli } from './helpers/cli';

const enabled = bpfAvailable('packets CLI');

type Run = CliRun;

function run(args: string[]): Run {
  return track(spawn(process.execPath, [CLI, 'packets', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Keeps the child's output, and kills it after the test if it is still running. */
function track(child: ChildProcess): Run {
  children.push(child);
  return trackCli(child);
}

/** A server on lo and `n` connections writing `bytes` each. */
const traffic = (port: number, n: number, bytes = 10, host = '127.0.0.1'): Promise<void> => loopbackExchange(port, n, bytes, host);

/** Ids of the BPF programs a process holds (from /proc/PID/fdinfo), so tests running
 * concurrently elsewhere do not count. */
function programsOf(pid: number): number[] {
  const ids: number[] = [];
  let fds: string[] = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fdinfo`); } catch { return ids; }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.push(Number(m[1]));
    } catch { /* closed meanwhile */ }
  }
  return [...new Set(ids)];
}

function loadedPrograms(): Set<number> {
  const list = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as Array<{ id: number }>;
  return new Set(list.map((p) => p.id));
}

async function allGone(ids: number[]): Promise<void> {
  await eventually(() => { const loaded = loadedPrograms(); return ids.every((id) => !loaded.has(id)); }, 5000, `programs ${ids.join(',')} unloaded`);
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe.skipIf(!enabled)('tcpscope packets (CLI)', () => {
  beforeAll(() => {
    // tsc still emits when another module has type errors; what matters is a fresh dist.
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.js'), 'bpf', 'ts'], { stdio: 'pipe' });
    } catch (e) {
      if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'cli', 'commands', 'packets.js'))) throw e;
      console.warn(`[packets CLI] build reported errors; using the emitted dist: ${String((e as { stdout?: Buffer }).stdout ?? '').slice(0, 400)}`);
    }
  }, 180_000);

  it('prints tcpdump-like lines and stops after -c N', async () => {
    const port = freePort();
    const r = run(['-i', 'lo', '-c', '3', `dst port ${port}`]);
    await started(r);
    const progs = programsOf(r.child.pid!);
    expect(progs).toHaveLength(1);
    await traffic(port, 2);
    expect(await r.exit).toBe(0);
    const lines = r.stdout().trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} lo In  IP 127\\.0\\.0\\.1\\.\\d+ > 127\\.0\\.0\\.1\\.${port}: Flags \\[S\\], seq \\d+, win 65495, options \\[mss 65495,sackOK,TS val \\d+ ecr 0,nop,wscale \\d+\\], length 0$`));
    expect(lines[1]).toMatch(/Flags \[\.\], ack \d+, win \d+, options \[nop,nop,TS val \d+ ecr \d+\], length 0$/);
    expect(lines[2]).toMatch(/Flags \[P\.\], seq (\d+):\d+, ack \d+, .*length 10$/);
    expect(r.stderr()).toMatch(/\d+ packets received, 0 lost/);
    await allGone(progs);
  });

  it('--json writes NDJSON', async () => {
    const port = freePort();
    const r = run(['-i', 'lo', '--json', '-c', '2', 'dst', 'port', String(port), 'and', '(syn', 'or', 'fin)']);
    await started(r);
    await traffic(port, 1);
    expect(await r.exit).toBe(0);
    const events = r.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ ifname: 'lo', hook: 'tc', family: 'ipv4', saddr: '127.0.0.1', daddr: '127.0.0.1', dport: port, flags: 'S', options: { mss: 65495, sackPermitted: true } });
    expect(events[1]).toMatchObject({ flags: 'F.', dport: port });
    // the capture's wall-clock time, as every command's --json gives it
    expect(Math.abs(Date.parse(events[0]!['time'] as string) - Date.now())).toBeLessThan(60_000);
    expect(BigInt(events[0]!['epochNs'] as string) / 1_000_000n).toBe(BigInt(Date.parse(events[0]!['time'] as string)));
  });

  it('-w writes pcapng that tcpdump -r reads back, with -s honoured', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-cli-'));
    try {
      const file = path.join(dir, 'cap.pcapng');
      const port = freePort();
      const r = run(['-i', 'lo', '-w', file, '-s', '96', '-c', '8', `port ${port}`]);
      await started(r);
      await traffic(port, 1, 500);
      await traffic(port, 1, 500, '::1');
      expect(await r.exit).toBe(0);
      const text = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const lines = text.trim().split('\n');
      expect(lines).toHaveLength(8);
      expect(lines[0]).toMatch(new RegExp(`IP 127\\.0\\.0\\.1\\.\\d+ > 127\\.0\\.0\\.1\\.${port}: Flags \\[S\\], seq \\d+, win 65495, options \\[mss 65495,sackOK,TS val \\d+ ecr 0,nop,wscale \\d+\\], length 0`));
      expect(lines[1]).toMatch(new RegExp(`IP 127\\.0\\.0\\.1\\.${port} > 127\\.0\\.0\\.1\\.\\d+: Flags \\[S\\.\\]`));
      expect(lines.some((l) => /Flags \[P\.\], seq 1:501, ack 1, .*length 500/.test(l))).toBe(true);
      const verbose = execFileSync('tcpdump', ['-r', file, '-nn', '-c', '4', '-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(verbose).not.toMatch(/truncated-ip/); // headers fit 96 bytes
      // snaplen: the 500-byte segment is cut at 96 bytes; file header says 96
      const info = execFileSync('tcpdump', ['-r', file, '-nn', '-c', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      void info;
      const raw = fs.readFileSync(file);
      expect(raw.readUInt32LE(0)).toBe(0x0a0d0d0a);
      const dump = execFileSync('tcpdump', ['-r', file, '-nn', '-x', '-c', '4'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const hexLinesOfData = dump.split('\n').filter((l) => /^\s+0x/.test(l)).length;
      expect(hexLinesOfData).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-w - writes the pcapng to standard output, as tcpdump does (piped into tcpdump -r -)', async () => {
    const port = freePort();
    for (const extra of [[], ['-U']]) {
      const pipeline = track(spawn('sh', ['-c', `"$0" "$1" packets -i lo -w - -c 6 ${extra.join(' ')} "port $2" | tcpdump -r - -nn`, process.execPath, CLI, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] }));
      await started(pipeline);
      await traffic(port, 2, 100);
      const code = await pipeline.exit;
      const out = pipeline.stdout(), err = pipeline.stderr();
      expect(code, err).toBe(0);
      const lines = out.trim().split('\n');
      expect(lines, err).toHaveLength(6);
      expect(lines[0]).toMatch(new RegExp(`> 127\\.0\\.0\\.1\\.${port}: Flags \\[S\\]`));
      expect(err).toMatch(/6 packets received, 0 lost/);
    }
  });

  it('-w buffers like tcpdump, and Ctrl-C still writes every packet the kernel had handed over', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-cli-'));
    try {
      const file = path.join(dir, 'cap.pcapng');
      const port = freePort();
      // Default -w batching reads the ring after 1 s or 4 MiB: the Ctrl-C below comes first.
      const r = run(['-i', 'lo', '-w', file, `port ${port}`]);
      await started(r);
      const connections = 25;
      await traffic(port, connections, 100);
      await connectionsSettled(port);
      r.child.kill('SIGINT');
      expect(await r.exit).toBe(0);
      const summary = /(\d+) packets received, 0 lost\n(\d+) TCP segments seen by the kernel, (\d+) matched the filter/.exec(r.stderr());
      expect(summary, r.stderr()).not.toBeNull();
      const [received, matched] = [Number(summary![1]), Number(summary![3])];
      expect(received).toBe(matched);
      const lines = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
      expect(lines).toHaveLength(received);
      // every connection's handshake and data made it into the file
      expect(lines.filter((l) => new RegExp(`> 127\\.0\\.0\\.1\\.${port}: Flags \\[S\\]`).test(l))).toHaveLength(connections);
      expect(lines.filter((l) => /length 100$/.test(l))).toHaveLength(connections);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C prints the summary and leaves nothing attached', async () => {
    const port = freePort();
    const r = run(['-i', 'lo', `port ${port}`]);
    await started(r);
    const progs = programsOf(r.child.pid!);
    expect(progs).toHaveLength(1);
    await traffic(port, 2);
    await connectionsSettled(port);
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(0);
    expect(r.stdout().trim().split('\n').length).toBeGreaterThanOrEqual(10);
    expect(r.stderr()).toMatch(/(\d+) packets received, 0 lost\n\d+ TCP segments seen by the kernel, \d+ matched the filter/);
    expect(execFileSync('bpftool', ['net', 'show', 'dev', 'lo'], { encoding: 'utf8' })).not.toMatch(new RegExp(`prog_id ${progs[0]}\\b`));
    await allGone(progs);
  });

  it('--duration stops it; --xdp attaches at XDP', async () => {
    const r = run(['-i', 'lo', '--xdp', '--duration', '4s', 'port 1']);
    await started(r);
    const progs = programsOf(r.child.pid!);
    expect(progs).toHaveLength(1);
    expect(execFileSync('bpftool', ['net', 'show', 'dev', 'lo'], { encoding: 'utf8' })).toMatch(new RegExp(`xdp:\\s*\\nlo\\(1\\) generic id ${progs[0]}`));
    const t0 = Date.now();
    expect(await r.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(r.stderr()).toMatch(/XDP/);
    expect(execFileSync('bpftool', ['net', 'show', 'dev', 'lo'], { encoding: 'utf8' })).not.toMatch(new RegExp(`generic id ${progs[0]}\\b`));
    await allGone(progs);
  });

  it('a second --xdp capture on an interface says who holds XDP there and to use tc; tc captures share it', async () => {
    const tn = createTestNet();
    try {
      const first = run(['-i', tn.hostIf, '--xdp', 'port 1']);
      await started(first);
      const second = run(['-i', tn.hostIf, '--xdp', 'port 1']);
      expect(await second.exit).toBe(1);
      expect(second.stderr()).toMatch(new RegExp(`XDP runs one program per interface and program 'packets_xdp' \\(id \\d+\\) of pid ${first.child.pid} \\([^)]+\\) holds it`)); // the comm: node, or MainThread on Node 24
      expect(second.stderr()).toMatch(/Capture at tc instead \(leave out --xdp\)/);
      expect(second.stderr()).not.toMatch(/\n\s+at /);
      // tc captures (and the XDP one) coexist.
      const tc1 = run(['-i', tn.hostIf, 'port 1']);
      const tc2 = run(['-i', tn.hostIf, 'port 1']);
      await started(tc1);
      await started(tc2);
      for (const r of [first, tc1, tc2]) r.child.kill('SIGINT');
      for (const r of [first, tc1, tc2]) expect(await r.exit).toBe(0);
    } finally {
      tn.destroy();
    }
  });

  it('usage errors: a filter that does not compile names the part; unknown interfaces', async () => {
    const bad = run(['-i', 'lo', 'port 80 and udp']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/bad filter: 'udp' is not supported/);
    const bad2 = run(['-i', 'lo', 'tcp[tcpflags] & tcp-syn !=']);
    expect(await bad2.exit).toBe(2);
    expect(bad2.stderr()).toMatch(/expected a number, a TCP flag/);
    const noif = run(['-i', 'nosuch0', 'port 80']);
    expect(await noif.exit).toBe(1);
    expect(noif.stderr()).toMatch(/no network interface named 'nosuch0'/);
    const none = run(['port 80']);
    expect(await none.exit).toBe(2);
    expect(none.stderr()).toMatch(/-i IFACE/);
  });
});
