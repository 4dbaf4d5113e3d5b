// SPDX-License-Identifier: MIT
// The conns, resets, drops, rtt and retrans commands run as processes (compiled dist), on
// real loopback traffic: output, --json, -c N, --duration, Ctrl-C summary, nothing left
// attached.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { kernelAtLeast } from '../lib/kernel/version';
import { connectAndWrite, connectRefused, freePort, sleep, startServer } from './helpers/tcpprobe';
import { CLI, READY, ready, runCli } from './helpers/cli';
import type { CliRun } from './helpers/cli';

const enabled = bpfAvailable('tcp CLI');

/** Ids of the BPF programs a process holds (its program and link fds name them in fdinfo). */
function programsHeldBy(pid: number): number[] {
  const ids = new Set<number>();
  const dir = `/proc/${pid}/fdinfo`;
  let fds: string[] = [];
  try { fds = fs.readdirSync(dir); } catch { return []; }
  for (const fd of fds) {
    let info = '';
    try { info = fs.readFileSync(path.join(dir, fd), 'utf8'); } catch { continue; }
    const m = /^prog_id:\s*(\d+)/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return [...ids];
}

/**
 * The programs the commands of this file loaded, noted at each readiness line (printed once
 * attached, while the command runs). Other suites load probes on this machine meanwhile, so
 * only these ids say whether a command that exited left something behind.
 */
const loaded = new Set<number>();
/** Commands that printed their readiness line holding no program: nothing to check them by. */
const unseen: string[] = [];

function run(args: string[]): CliRun {
  const r = runCli(args);
  const atReady = (): void => {
    if (!READY.test(r.stderr())) return;
    r.child.stderr!.off('data', atReady);
    const ids = programsHeldBy(r.child.pid!);
    if (ids.length === 0) unseen.push(args.join(' '));
    for (const id of ids) loaded.add(id);
  };
  r.child.stderr!.on('data', atReady);
  return r;
}

function programsLeft(): number[] {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as Array<{ id: number }>;
  return progs.map((p) => p.id).filter((id) => loaded.has(id));
}

/** Every program the exited commands loaded is gone; the kernel frees them asynchronously: allow it a moment. */
async function noneLeft(): Promise<void> {
  expect(unseen, 'commands whose programs could not be noted at their readiness line').toEqual([]);
  await eventually(() => programsLeft().length === 0, 5000, 'the commands\' programs to be released');
  loaded.clear();
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
      const text = run(['conns', '-P', String(port), '--duration', '20s']);
      const json = run(['conns', '-P', String(port), '--json', '-c', '2']);
      await ready(text);
      await ready(json);
      expect(text.stdout()).toMatch(/RX_BYTES/);
      await connectAndWrite('127.0.0.1', port, 3333);
      expect(await json.exit).toBe(0);
      const events = json.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events).toHaveLength(2);
      const passive = events.find((e) => e['direction'] === 'passive')!;
      expect(passive).toMatchObject({ type: 'close', pid: server.pid, comm: 'tcps-cli-srv', bytesReceived: 3333, sport: port });
      expect(json.stderr()).toMatch(/2 events received, 0 lost/);
      // Ctrl-C: summary on stderr, exit 0.
      await eventually(() => text.stdout().includes('tcps-cli-srv'), 5000, 'the text run to print the connection');
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
      const r = run(['conns', '--states', '-P', String(port), '--duration', '8s']);
      await ready(r);
      expect(r.stdout()).toMatch(/TRANSITION/);
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
    const resets = run(['resets', '-P', String(port), '--duration', '8s']);
    const drops = run(['drops', '-P', String(port), '--json', '--duration', '8s']);
    await ready(resets);
    await ready(drops);
    await connectRefused('127.0.0.1', port);
    expect(await resets.exit).toBe(0);
    expect(await drops.exit).toBe(0);
    expect(resets.stdout()).toMatch(new RegExp(`sent\\s+127\\.0\\.0\\.1:${port}\\s.*NO_SOCKET`));
    expect(resets.stdout()).toMatch(/received .*SYN_SENT/);
    const drop = drops.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['dport'] === port);
    expect(drop).toMatchObject({ type: 'drop', reason: 'NO_SOCKET', flagBits: 0x02 });
    expect(drops.stderr()).toMatch(/events received, 0 lost/);
    await noneLeft();
  });

  it('rtt: a histogram at exit, bcc-style, and as JSON', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-cli-rtt');
    try {
      const r = run(['rtt', '-P', String(port), '-b', 'local-port', '--duration', '8s']);
      const j = run(['rtt', '-P', String(port), '--json', '--duration', '8s']);
      await ready(r);
      await ready(j);
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

  it('rtt with neither --duration nor --interval runs until Ctrl-C, then prints the histogram', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-cli-rtt2');
    try {
      for (const args of [[], ['--json']]) {
        const r = run(['rtt', '-P', String(port), ...args]);
        await ready(r);
        await connectAndWrite('127.0.0.1', port, 50000);
        await sleep(300); // it must still be running: nothing but Ctrl-C ends it
        expect(r.child.exitCode).toBeNull();
        r.child.kill('SIGINT');
        expect(await r.exit).toBe(0);
        const total = Number(/(\d+) samples received/.exec(r.stderr())?.[1]);
        expect(total).toBeGreaterThan(0);
        if (args.length) expect((JSON.parse(r.stdout().trim().split('\n')[0]!) as { count: number }).count).toBe(total);
        else expect(r.stdout()).toMatch(new RegExp(`all: ${total} samples`));
      }
    } finally {
      await server.stop();
    }
    await noneLeft();
  });

  it('rtt --interval: the closing summary counts the samples of every interval', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-cli-rtt3');
    try {
      const r = run(['rtt', '-P', String(port), '--interval', '200ms', '--json']);
      await ready(r);
      const rows = (): Array<{ count: number }> => r.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { count: number });
      await connectAndWrite('127.0.0.1', port, 50000);
      await eventually(() => rows().length >= 1, 5000, 'a first interval with samples');
      const before = rows().length;
      await eventually(async () => { await connectAndWrite('127.0.0.1', port, 50000); return rows().length > before; }, 5000, 'a later interval with samples');
      r.child.kill('SIGINT');
      expect(await r.exit).toBe(0);
      const all = rows();
      expect(all.length).toBeGreaterThanOrEqual(2);
      const total = Number(/(\d+) samples received/.exec(r.stderr())?.[1]);
      expect(total).toBe(all.reduce((n, row) => n + row.count, 0));
      expect(total).toBeGreaterThan(all[all.length - 1]!.count);
    } finally {
      await server.stop();
    }
  });

  it('--duration is counted from the readiness line, not from the start of loading', async () => {
    const r = run(['resets', '-P', String(freePort()), '--duration', '1s']);
    const at = await ready(r);
    expect(await r.exit).toBe(0);
    // setTimeout never fires early; the slack covers seeing the two lines at different delays.
    expect(Date.now() - at).toBeGreaterThanOrEqual(950);
  });

  it('bad -c, -s and --duration values are refused before anything is attached', async () => {
    for (const args of [['resets', '-c', 'abc'], ['resets', '-c', '-1'], ['retrans', '--count=0'], ['packets', '-i', 'lo', '-s', '-5'], ['conns', '--duration', '0'], ['conns', '--duration', 'soon']]) {
      const r = run(args);
      expect(await r.exit).toBe(2);
      expect(r.stderr()).toMatch(/^tcpscope \w+: bad (count|--snaplen|duration) '[^']*'/);
      expect(r.stderr()).not.toMatch(READY);
      expect(r.stderr()).not.toMatch(/ambiguous|at Object|node:internal/);
    }
  });

  it('old spellings still work for one version, with a warning: -p PORT, -d DURATION, drops -r, rtt -i', async () => {
    const r = run(['retrans', '-p', String(freePort()), '-d', '300ms']);
    expect(await r.exit).toBe(0);
    expect(r.stderr()).toMatch(/warning: -p PORT is deprecated: use -P\/--port/);
    expect(r.stderr()).toMatch(/warning: -d DURATION is deprecated: use --duration/);
    const d = run(['drops', '-r', 'NO_SOCKET', '--duration', '300ms']);
    expect(await d.exit).toBe(kernelAtLeast(5, 17) ? 0 : 2); // no drop reasons before 5.17
    expect(d.stderr()).toMatch(/warning: -r REASON is deprecated: use --reason/);
    const i = run(['rtt', '-i', '200ms', '--duration', '300ms']);
    expect(await i.exit).toBe(0);
    expect(i.stderr()).toMatch(/warning: -i INTERVAL is deprecated: use --interval/);
    await noneLeft();
  });

  it('retrans runs and ends cleanly', async () => {
    const r = run(['retrans', '-P', String(freePort()), '--duration', '1s']);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/TYPE\s+LOCAL\s+REMOTE\s+STATE/);
    expect(r.stderr()).toMatch(/0 events received, 0 lost/);
    await noneLeft();
  });
});
