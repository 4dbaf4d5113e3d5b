// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import { cleanupAttachments } from '../../bpf/registry';
import { PIN_ROOT } from '../../bpf/sys';
import { removeOrphanTestNets } from '../../net/testnet';
import type { Command } from '../command';

export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: 'remove what a killed tcpscope left: tc filters, netlink XDP programs, pins, demo namespaces',
  usage: '[--all]',
  options: { all: { type: 'boolean', default: false, help: 'also remove what live tcpscope processes attached (stops them working)' } },
  examples: [
    ['sudo tcpscope cleanup', 'after a tcpscope was killed (kill -9, OOM): remove the filters, XDP programs, pins and demo namespaces it left; attachments of running tcpscope processes stay'],
    ['sudo tcpscope cleanup --all', 'also remove the attachments of running tcpscope processes (they stop seeing traffic)'],
  ],
  async run(ctx) {
    const all = Boolean(ctx.values['all']);
    const result = cleanupAttachments({ all });
    for (const e of result.removed) ctx.out.write(`removed ${e.kind} program ${e.program} from ${e.ifname ?? `ifindex ${e.ifindex}`} (pid ${e.pid})\n`);
    for (const e of result.kept) ctx.out.write(`kept ${e.kind} program ${e.program} on ${e.ifname ?? e.ifindex}: pid ${e.pid} is still running (--all removes it)\n`);
    for (const f of result.failed) ctx.err.write(`could not remove ${f.entry.kind} program ${f.entry.program} on ${f.entry.ifname ?? f.entry.ifindex}: ${f.error}\n`);
    for (const ns of removeOrphanTestNets(all)) ctx.out.write(`removed demo/test network namespace ${ns} and its veth\n`);
    let pins = 0;
    if (fs.existsSync(PIN_ROOT)) {
      for (const name of fs.readdirSync(PIN_ROOT)) {
        fs.rmSync(`${PIN_ROOT}/${name}`, { recursive: true, force: true });
        pins++;
      }
      fs.rmSync(PIN_ROOT, { recursive: true, force: true });
    }
    if (pins) ctx.out.write(`removed ${pins} pinned object(s) under ${PIN_ROOT}\n`);
    if (!result.removed.length && !pins && !result.failed.length) ctx.out.write('nothing to clean up\n');
    return result.failed.length ? 1 : 0;
  },
};
