// SPDX-License-Identifier: MIT
// A SIGKILLed process leaves nothing that outlives it except what `tcpscope cleanup` removes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { attachedPrograms } from '../lib/bpf';
import { kernelAtLeast } from '../lib/kernel/version';
import { bpfAvailable, ROOT, eventually } from './helpers/bpf';
import { createTestNet, TestNet } from './helpers/netns';

const enabled = bpfAvailable('cleanup');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

/** Starts a child that attaches with the given options, reports "attached", then waits to be killed. */
async function attachInChild(iface: string, how: 'tcx' | 'clsact' | 'xdp-link' | 'xdp-netlink'): Promise<import('node:child_process').ChildProcess> {
  const script = `
    const { BpfObject, builtObjectPath } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'bpf'))});
    const obj = BpfObject.load(builtObjectPath('rt_attach'));
    const how = ${JSON.stringify(how)};
    if (how === 'tcx' || how === 'clsact') obj.program('tc_count_syn').attachTc(${JSON.stringify(iface)}, { mechanism: how });
    else obj.program('xdp_count_syn').attachXdp(${JSON.stringify(iface)}, { mode: 'skb', netlink: how === 'xdp-netlink' });
    console.log('attached');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toContain('attached');
  return child;
}

/** Names of programs attached to the interface, as the kernel reports them. */
function netShow(iface: string): string {
  return attachedPrograms(iface).map((p) => `${p.hook}:${p.name}`).join(' ');
}

async function kill(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

describe.skipIf(!enabled)('SIGKILL and tcpscope cleanup', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  it('BPF links (tcx, XDP link) are gone when the process is killed', async () => {
    // tcx came in 6.6; before it, tc attachments are clsact filters (tested below).
    for (const how of kernelAtLeast(6, 6) ? (['tcx', 'xdp-link'] as const) : (['xdp-link'] as const)) {
      const child = await attachInChild(tn.hostIf, how);
      try {
        expect(netShow(tn.hostIf)).toMatch(how === 'tcx' ? /tcx_ingress:tc_count_syn/ : /xdp_skb:xdp_count_syn/);
      } finally {
        await kill(child); // also when the assertion fails: the child must not outlive the test
      }
      await eventually(() => !/count_syn/.test(netShow(tn.hostIf)), 3000, `${how} gone after SIGKILL`);
    }
  });

  it('clsact filters and netlink XDP survive SIGKILL and `tcpscope cleanup` removes them', async () => {
    await kill(await attachInChild(tn.hostIf, 'clsact'));
    await kill(await attachInChild(tn.hostIf, 'xdp-netlink'));
    const left = netShow(tn.hostIf);
    expect(left).toMatch(/tc_count_syn/);
    expect(left).toMatch(/xdp_count_syn/);
    const out = execFileSync(process.execPath, [CLI, 'cleanup'], { encoding: 'utf8' });
    expect(out).toMatch(new RegExp(`removed tc program tc_count_syn from ${tn.hostIf}`));
    expect(out).toMatch(new RegExp(`removed xdp program xdp_count_syn from ${tn.hostIf}`));
    expect(netShow(tn.hostIf)).not.toMatch(/count_syn/);
    expect(execFileSync(process.execPath, [CLI, 'cleanup'], { encoding: 'utf8' })).toMatch(/nothing to clean up/);
  });

  it('cleanup keeps the attachments of a process that is still running', async () => {
    const child = await attachInChild(tn.hostIf, 'clsact');
    try {
      const out = execFileSync(process.execPath, [CLI, 'cleanup'], { encoding: 'utf8' });
      expect(out).toMatch(/kept tc program tc_count_syn .* still running/);
      expect(netShow(tn.hostIf)).toMatch(/tc_count_syn/);
    } finally {
      await kill(child);
      execFileSync(process.execPath, [CLI, 'cleanup'], { encoding: 'utf8' });
    }
    expect(netShow(tn.hostIf)).not.toMatch(/count_syn/);
  });
});
