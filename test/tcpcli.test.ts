// SPDX-License-Identifier: MIT
// The conns, resets, drops, rtt and retrans commands run as processes (compiled dist), on
// real loopback traffic: output, --json, -c N, --duration, Ctrl-C summary, nothing left
// attached.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { connectAndWrite, connectRefused, freePort, sleep, startServer } from './helpers/tcpprobe';

const enabled = bpfAvailable('tcp CLI');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

interface Run { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> }

function run(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Waits until the command has attached (its header line, or its "Tracing" note). */
async function started(r: Run, marker: RegExp, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!marker.test(r.stdout() + r.stderr())) {
    if (Date.now() > deadline || r.child.exitCode !== null) throw new Error(`command did not start: ${r.stdout()} ${r.stderr()}`);
    await sleep(20);
  }
  await sleep(100);
}

/**
 * Probe programs that no process holds: what an exited command would have left attached.
 * (Other test processes on this machine may be running probes of their own: those have a
 * holder.)
 */
function orphanPrograms(): string[] {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as Array<{ id: number; name?: string; pids?: unknown[] }>;
  return progs.filter((p) => /^(conns_|tev_)/.test(p.name ?? '') && !(p.pids && p.pids.length)).map((p) => `${p.id} ${p.name}`);
}

/** The kernel frees a dead process's programs asynchronously: allow it a moment. */
async function noneLeft(): Promise<void> {
  await eventually(() => orphanPrograms().length === 0, 5000, 'probe programs to be released');
}

describe.skipIf(!enabled)('tcpscope conns/resets/drops/rtt/retrans', { timeout: 60_000 }, () => {
  beforeAll(() => {
    if (!fs.existsSync(CLI)) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.js'), 'ts'], { stdio: 'inherit' });
  });

  it('lists the commands and rejects bad options with usage errors', async () => {
    const help = run(['--help']);
    await help.exit;
    for (const name of ['conns', 'retrans', 'rtt', 'resets', 'drops']) expect(help.stdout()).toContain(name);
    const bad = run(['conns', '--port', '99999']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/bad port '99999'/);
    const bad2 = run(['rtt', '--by', 'colour']);
    expect(await bad2.exit).toBe(2);
    await noneLeft();
  });

  it('conns: one line per close with pid, comm, bytes; --json with -c stops after N', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-cli-srv');
    try {
      const text = run(['conns', '-p', String(port), '-d', '20s']);
      const json = run(['conns', '-p', String(port), '--json', '-c', '2']);
      await started(text, /RX_BYTES/);
      await started(json, /$/);
      await sleep(1500); // the --json run prints no header: give it time to attach
      await connectAndWrite('127.0.0.1', port, 3333);
      expect(await json.exit).toBe(0);
      const events = json.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events).toHaveLength(2);
      const passive = events.find((e) => e['direction'] === 'passive')!;
      expect(passive).toMatchObject({ type: 'close', pid: server.pid, comm: 'tcps-cli-srv', bytesReceived: 3333, sport: port });
      expect(json.stderr()).toMatch(/2 events received, 0 lost/);
      // Ctrl-C: summary on stderr, exit 0.
      await sleep(200);
      text.child.kill('SIGINT');
      expect(await text.exit).toBe(0);
      const line = text.stdout().split('\n').find((l) => l.includes('tcps-cli-srv'))!;
      expect(line).toContain(String(server.pid));
      expect(line).toMatch(/\s3333\s/);
      expect(text.stderr()).toMatch(/\d+ events received, 0 lost/);
    } finally {
      await server.stop();
    }
    await noneLeft();
  });

  it('conns --states prints transitions', async () => {
    const port = freePort();
    const server = await startServer('::1', port, 'tcps-cli-st');
    try {
      const r = run(['conns', '--states', '-p', String(port), '-d', '8s']);
      await started(r, /TRANSITION/);
      await connectAndWrite('::1', port, 10);
      expect(await r.exit).toBe(0);
      expect(r.stdout()).toMatch(/\[::1\]:\d+\s+\[::1\]:\d+\s+SYN_SENT -> ESTABLISHED/);
      expect(r.stdout()).toMatch(/LAST_ACK -> CLOSE/);
    } finally {
      await server.stop();
    }
  });

  it('resets and drops: NO_SOCKET for a SYN to a closed port; --duration ends them', async () => {
    const port = freePort();
    const resets = run(['resets', '-p', String(port), '-d', '8s']);
    const drops = run(['drops', '-p', String(port), '--json', '-d', '8s']);
    await started(resets, /REASON/);
    await sleep(1500);
    await connectRefused('127.0.0.1', port);
    expect(await resets.exit).toBe(0);
    expect(await drops.exit).toBe(0);
    expect(resets.stdout()).toMatch(new RegExp(`sent\\s+127\\.0\\.0\\.1:${port}\\s.*NO_SOCKET`));
    expect(resets.stdout()).toMatch(/received .*SYN_SENT/);
    const drop = drops.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['dport'] === port);
    expect(drop).toMatchObject({ type: 'drop', reason: 'NO_SOCKET', tcpFlags: 'S' });
    expect(drops.stderr()).toMatch(/events received, 0 lost/);
    await noneLeft();
  });

  it('rtt: a histogram at exit, bcc-style, and as JSON', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-cli-rtt');
    try {
      const r = run(['rtt', '-p', String(port), '-b', 'local-port', '-d', '8s']);
      const j = run(['rtt', '-p', String(port), '--json', '-d', '8s']);
      await started(r, /Tracing TCP RTT/);
      await sleep(500);
      for (let i = 0; i < 3; i++) await connectAndWrite('127.0.0.1', port, 50000);
      expect(await r.exit).toBe(0);
      expect(await j.exit).toBe(0);
      expect(r.stdout()).toMatch(new RegExp(`port ${port}: \\d+ samples`));
      expect(r.stdout()).toMatch(/usecs\s+: count\s+distribution/);
      expect(r.stdout()).toMatch(/\d+ -> \d+\s+:\s+\d+ \|\*+/);
      const rows = j.stdout().trim().split('\n').map((l) => JSON.parse(l) as { type: string; count: number });
      expect(rows[0]!.type).toBe('histogram');
      expect(rows[0]!.count).toBeGreaterThan(0);
      expect(r.stderr()).toMatch(/\d+ samples received, 0 lost/);
    } finally {
      await server.stop();
    }
  });

  it('retrans runs and ends cleanly', async () => {
    const r = run(['retrans', '-p', String(freePort()), '-d', '1s']);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/TYPE\s+LOCAL\s+REMOTE\s+STATE/);
    expect(r.stderr()).toMatch(/0 events received, 0 lost/);
    await noneLeft();
  });
});
