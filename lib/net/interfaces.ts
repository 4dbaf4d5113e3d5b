// SPDX-License-Identifier: MIT
import fs from 'node:fs';

/**
 * Interfaces that are up (loopback included), skipping virtual devices that carry no
 * traffic of interest (ifb, dummy, bonding members) and tcpscope's own test/demo veths.
 */
export function upInterfaces(): string[] {
  return fs.readdirSync('/sys/class/net').filter((name) => {
    if (/^(ifb|dummy|bond|team|tsh|tsn|tsd)/.test(name)) return false;
    try {
      const flags = parseInt(fs.readFileSync(`/sys/class/net/${name}/flags`, 'utf8'), 16);
      return (flags & 0x1) !== 0; // IFF_UP
    } catch {
      return false;
    }
  });
}
