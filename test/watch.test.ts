// SPDX-License-Identifier: MIT
// The main job as a user runs it: `tcpscope watch --demo` shows real connections through
// the demo network, then leaves nothing behind, also when it is killed with SIGKILL.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';

/** What the demo announces: its host-side veth and the process holding its namespace. */
function demoOf(stderr: string): { veth: string; holder: number; port: number } | undefined {
  const m = /demo: veth (\S+) into a namespace held by process (\d+):.* port (\d+)/.exec(stderr);
  return m ? { veth: m[1]!, holder: Number(m[2]), port: Number(m[3]) } : undefined;
}

/** The complete JSON lines printed so far. */
function records(stdout: string): Array<Record<string, unknown>> {
  return stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The demo's connections to its server on `port`, as the server side saw them. */
function passiveOf(stdout: string, port: number): Array<Record<string, unknown>> {
  return records(stdout).filter((e) => e['direction'] === 'passive' && e['sport'] === port);
}

const linkExists = (name: string): boolean => spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0;

const enabled = bpfAvailable('watch');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

describe.skipIf(!enabled)('tcpscope watch', () => {
  it('--demo drives real connections, reports them with their owner, and cleans up', async () => {
    const child = spawn(process.execPath, [CLI, 'watch', '--demo', '--json', '-i', 'lo', '--duration', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    const exited = once(child, 'exit');
    const trafficDone = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/traffic done/.test(stderr)) resolve();
    }));
    // Ctrl-C once the demo is done and its last connection is reported, as a user would.
    await Promise.race([trafficDone, exited.then(() => { throw new Error(`watch exited before the demo was done: ${stderr}`); })]);
    const announced = Number(/traffic done \((\d+) connections/.exec(stderr)![1]);
    await eventually(() => passiveOf(stdout, demoOf(stderr)!.port).filter((e) => e['type'] === 'close').length >= announced, 10_000, 'every demo connection closed');
    child.kill('SIGINT');
    const [code] = (await exited) as [number];
    const demo = demoOf(stderr);
    expect(demo, stderr).toBeDefined();
    expect(code).toBe(0);
    const port = demo!.port;
    const [, drivenText, bytesText] = /demo: traffic done \((\d+) connections of (\d+) bytes\)/.exec(stderr) ?? [];
    const driven = Number(drivenText);
    const bytes = Number(bytesText);
    // However many connections the demo says it made, each is seen opening and closing.
    expect(driven).toBeGreaterThan(0);
    const events = records(stdout);
    const passive = passiveOf(stdout, port);
    expect(passive.filter((e) => e['type'] === 'open').length).toBe(driven);
    expect(passive.filter((e) => e['type'] === 'close').length).toBe(driven);
    expect(passive.every((e) => e['pid'] === child.pid)).toBe(true);
    expect(passive.some((e) => e['family'] === 'ipv6')).toBe(true);
    const closed = passive.filter((e) => e['type'] === 'close');
    expect(bytes).toBeGreaterThan(0);
    expect(closed.every((e) => e['bytesReceived'] === bytes)).toBe(true);
    const rates = events.filter((e) => e['type'] === 'rates');
    const demoIf = demo!.veth;
    const seen = rates.reduce((n, r) => n + ((r['interfaces'] as Record<string, { syns: number }>)[demoIf]?.syns ?? 0), 0);
    expect(seen).toBe(driven);
    expect(stderr).toMatch(/\d+ connection events \(0 lost\), \d+ packets \(0 lost\)/);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`tcps-${child.pid}-`));
    expect(linkExists(demoIf)).toBe(false);
    expect(fs.existsSync(`/proc/${demo!.holder}`)).toBe(false);
  }, 70_000);

  it('SIGKILLed during the demo, leaves no namespace, veth or holder behind (no cleanup needed)', async () => {
    const child = spawn(process.execPath, [CLI, 'watch', '--demo', '--json', '-i', 'lo', '--duration', '60s'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const exited = once(child, 'exit');
    const announced = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (demoOf(stderr)) resolve();
    }));
    await Promise.race([announced, exited.then(() => { throw new Error(`watch exited before the demo started: ${stderr}`); })]);
    const demo = demoOf(stderr)!;
    // The demo's network exists while the command runs...
    expect(linkExists(demo.veth)).toBe(true);
    const ns = fs.readlinkSync(`/proc/${demo.holder}/ns/net`);
    expect(ns).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    child.kill('SIGKILL');
    await exited;
    // ...and goes when it is killed: the holder sees its pipe close, the kernel destroys the
    // namespace and with it both ends of the veth pair.
    await eventually(() => !fs.existsSync(`/proc/${demo.holder}`), 10_000, 'the namespace holder to exit');
    await eventually(() => !linkExists(demo.veth), 10_000, `veth ${demo.veth} to disappear`);
    // No process is left in that namespace, and none was given a name.
    const holders = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return fs.readlinkSync(`/proc/${p}/ns/net`) === ns; } catch { return false; }
    });
    expect(holders).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`tcps-${child.pid}-`));
  }, 70_000);
});
