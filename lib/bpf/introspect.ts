// SPDX-License-Identifier: MIT
// What is attached to an interface right now, asked from the kernel (bpftool 7.1 cannot
// list tcx links, and shows netlink XDP programs without names).
import { execFileSync } from 'node:child_process';
import { native } from './native';
import { InterfaceRef, interfaceIndex } from './netif';

export interface AttachedProgram {
  hook: 'xdp_skb' | 'xdp_drv' | 'xdp_hw' | 'tcx_ingress' | 'tcx_egress' | 'tc_ingress' | 'tc_egress';
  id: number;
  name: string;
}

const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;

function named(hook: AttachedProgram['hook'], id: number): AttachedProgram {
  return { hook, id, name: native().progInfoById(id)?.name ?? '' };
}

/** Programs attached to an interface at XDP, tcx and clsact (the last via `tc filter show`). */
export function attachedPrograms(iface: InterfaceRef): AttachedProgram[] {
  const ifindex = interfaceIndex(iface);
  const out: AttachedProgram[] = [];
  const xdp = native().xdpQuery(ifindex);
  if (xdp.skb) out.push(named('xdp_skb', xdp.skb));
  if (xdp.drv) out.push(named('xdp_drv', xdp.drv));
  if (xdp.hw) out.push(named('xdp_hw', xdp.hw));
  for (const id of native().progQuery(ifindex, BPF_TCX_INGRESS)) out.push(named('tcx_ingress', id));
  for (const id of native().progQuery(ifindex, BPF_TCX_EGRESS)) out.push(named('tcx_egress', id));
  const name = typeof iface === 'string' ? iface : native().ifIndexToName(ifindex);
  for (const direction of ['ingress', 'egress'] as const) {
    let text = '';
    try {
      text = execFileSync('tc', ['filter', 'show', 'dev', String(name), direction], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue; // no clsact qdisc
    }
    for (const m of text.matchAll(/\bid (\d+)/g)) out.push(named(direction === 'ingress' ? 'tc_ingress' : 'tc_egress', Number(m[1])));
  }
  return out;
}
