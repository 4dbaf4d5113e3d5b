// SPDX-License-Identifier: MIT
// lib/net/floodnet: the confinement every random-source flood of the tests and benchmarks
// relies on. Replies from the flooded side to forged sources must go through the veth, the
// ip route get check must refuse when they would not, and nothing may stay in the routing
// policy afterwards. No packet is sent here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { prepareFloodNet, routeDevice } from '../lib/net/floodnet';
import { bpfAvailable } from './helpers/bpf';
import { createTestNet, TestNet } from './helpers/netns';

const enabled = bpfAvailable('floodnet');

/** The policy rules (IPv4 and IPv6) that mention `address`. */
function rulesFrom(address: string): string[] {
  return ['-4', '-6'].flatMap((fam) => execFileSync('ip', [fam, 'rule', 'show'], { encoding: 'utf8' }).split('\n'))
    .filter((l) => l.includes(`from ${address} `));
}

describe.skipIf(!enabled)('prepareFloodNet', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => { tn?.destroy(); });

  it('routes replies to forged IPv4 and IPv6 sources through the veth, and destroy() leaves no rule', () => {
    expect(routeDevice(tn.hostV4, '198.51.100.7')).not.toBe(tn.hostIf);
    const fnet = prepareFloodNet(tn);
    try {
      expect(routeDevice(tn.hostV4, '198.51.100.7')).toBe(tn.hostIf);
      expect(routeDevice(tn.hostV4, '203.0.113.200')).toBe(tn.hostIf);
      expect(routeDevice(tn.hostV6, '2001:db8::1234')).toBe(tn.hostIf);
      expect(rulesFrom(tn.hostV4)).toHaveLength(1);
      expect(rulesFrom(tn.hostV6)).toHaveLength(1);
    } finally {
      fnet.destroy();
    }
    fnet.destroy(); // idempotent
    expect(rulesFrom(tn.hostV4)).toEqual([]);
    expect(rulesFrom(tn.hostV6)).toEqual([]);
    expect(routeDevice(tn.hostV4, '198.51.100.7')).not.toBe(tn.hostIf);
  });

  it('refuses, naming the interface, when replies would still leave another way, and leaves nothing behind', () => {
    // A rule ahead of the confinement's (pref 90) sends this address's replies to the main table.
    execFileSync('ip', ['rule', 'add', 'from', tn.hostV4, 'lookup', 'main', 'pref', '80']);
    try {
      expect(() => prepareFloodNet(tn)).toThrow(new RegExp(`^replies from ${tn.hostV4.replace(/\./g, '\\.')} to a forged source would leave through .+, not ${tn.hostIf}: refusing to flood$`));
    } finally {
      execFileSync('ip', ['rule', 'del', 'from', tn.hostV4, 'lookup', 'main', 'pref', '80']);
    }
    expect(rulesFrom(tn.hostV4)).toEqual([]);
    expect(rulesFrom(tn.hostV6)).toEqual([]);
  });

  it('works in the namespace the flooded side was moved to', () => {
    const ns = `tcps-${process.pid}-98`;
    const other = createTestNet();
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['link', 'set', other.hostIf, 'netns', ns]);
      execFileSync('ip', ['-n', ns, 'addr', 'add', `${other.hostV4}/24`, 'dev', other.hostIf]);
      execFileSync('ip', ['-n', ns, '-6', 'addr', 'add', `${other.hostV6}/64`, 'dev', other.hostIf, 'nodad']);
      execFileSync('ip', ['-n', ns, 'link', 'set', other.hostIf, 'up']);
      const fnet = prepareFloodNet(other, { netns: ns });
      expect(routeDevice(other.hostV4, '198.51.100.7', ns)).toBe(other.hostIf);
      fnet.destroy();
      expect(execFileSync('ip', ['-n', ns, 'rule', 'show'], { encoding: 'utf8' })).not.toContain(other.hostV4);
      // The caller's namespace was not touched.
      expect(rulesFrom(other.hostV4)).toEqual([]);
    } finally {
      other.destroy();
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
