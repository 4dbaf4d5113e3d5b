// SPDX-License-Identifier: MIT
// The main job as a user runs it: `tcpscope watch --demo` shows real connections through
// the demo network, then leaves nothing behind.
import { describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { bpfAvailable, ROOT } from './helpers/bpf';

const enabled = bpfAvailable('watch');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

describe.skipIf(!enabled)('tcpscope watch', () => {
  it('--demo drives real connections, reports them with their owner, and cleans up', async () => {
    const child = spawn(process.execPath, [CLI, 'watch', '--demo', '--json', '-i', 'lo', '--duration', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    // Ctrl-C once the demo is done, as a user would.
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/traffic done/.test(d.toString())) setTimeout(() => child.kill('SIGINT'), 300);
    });
    const [code] = (await once(child, 'exit')) as [number];
    expect(stderr).toMatch(/demo: tcps-\d+-\d+ \(.*\) connects to/);
    expect(code).toBe(0);
    const port = Number(/port (\d+)/.exec(stderr)![1]);
    const driven = Number(/demo: traffic done \((\d+) connections\)/.exec(stderr)?.[1]);
    expect(driven).toBe(36); // 3 rounds of 8 IPv4 + 4 IPv6 connections
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const passive = events.filter((e) => e['direction'] === 'passive' && e['sport'] === port);
    expect(passive.filter((e) => e['type'] === 'open').length).toBe(36);
    expect(passive.filter((e) => e['type'] === 'close').length).toBe(36);
    expect(passive.every((e) => e['pid'] === child.pid)).toBe(true);
    expect(passive.some((e) => e['family'] === 'ipv6')).toBe(true);
    const closed = passive.filter((e) => e['type'] === 'close');
    expect(closed.every((e) => e['bytesReceived'] === 2000)).toBe(true);
    const rates = events.filter((e) => e['type'] === 'rates');
    const demoIf = /demo: (tcps-\d+-\d+)/.exec(stderr)![1]!.replace(/^tcps-(\d+)-(\d+)$/, 'tsh$1x$2');
    const seen = rates.reduce((n, r) => n + ((r['interfaces'] as Record<string, { syns: number }>)[demoIf]?.syns ?? 0), 0);
    expect(seen).toBe(36);
    expect(stderr).toMatch(/\d+ connection events \(0 lost\), \d+ packets \(0 lost\)/);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`tcps-${child.pid}-`));
  }, 70_000);
});
