// SPDX-License-Identifier: MIT
// Dropped TCP packets with the kernel's drop reason (skb:kfree_skb, filtered to TCP in the
// kernel, headers parsed with CO-RE) and bad checksums (tcp:tcp_bad_csum).
import type { BpfObject } from '../bpf/object';
import { dropReasonName, kernelEnum } from '../kernel/names';
import { compileFilter, TcpFilterOptions, EventCapOptions, TcpProbe, asArray } from './tcp_common';
import { BASE_FIELDS, EV, RawTcpEvent, TcpEventBase, openTcpEvents, portsKnown, reasonOf } from './tcp_events';
import { tcpFlags } from '../bpf/packet';
import type { TcpFlags } from '../bpf/packet';
import { lazyEvents } from './stream';

/** Size of the kernel's drop_reasons map (DROP_REASONS_MAX in bpf/tcpevents.bpf.c). */
const DROP_REASONS_MAX = 1024;

export interface DropEvent extends TcpEventBase {
  /** drop: skb freed with a drop reason; bad_csum: a segment failed its checksum. */
  type: 'drop' | 'bad_csum';
  /**
   * The drop reason named from the running kernel's BTF (enum skb_drop_reason: NO_SOCKET,
   * TCP_CSUM, ...). undefined before 5.17 (no reason in kfree_skb) and for bad_csum events.
   * saddr/sport are the packet's source, daddr/dport its destination.
   */
  reason: string | undefined;
  reasonCode: number | undefined;
  /** False when the TCP header could not be read (ports are then 0). */
  portsKnown: boolean;
  seq: number;
  /** The segment's TCP flags, decoded (flagLetters(flagBits) gives tcpdump's 'S', 'S.', 'R'...). */
  flags: TcpFlags;
  /** The TCP flags byte (TCP_FLAGS). */
  flagBits: number;
}

export interface DropsOptions extends TcpFilterOptions, EventCapOptions {
  /** Also report tcp:tcp_bad_csum. Default true. */
  badChecksums?: boolean;
  /**
   * Only these drop reasons (names of enum skb_drop_reason without the prefix, e.g.
   * NO_SOCKET). Kernels before 5.17 have no drop reasons: there, any reasons option throws.
   */
  reasons?: string[];
  /**
   * Count drops per reason in the kernel instead of sending an event for each (read them
   * with dropCounts()); bad-checksum events are still sent. For metrics under load: a
   * flood's drops come one per packet. Port filters apply; address filters (applied in
   * user space to events) cannot, and are refused. Default false.
   */
  countOnly?: boolean;
}

/** Drops of one reason counted in the kernel since the probe started (drops({ countOnly: true })). */
export interface DropCount {
  /** The kernel's name (NO_SOCKET, ...); undefined when the kernel gives no reason (before 5.17). */
  reason: string | undefined;
  count: number;
}

export interface DropCounter {
  /** Drops per reason counted in the kernel (countOnly); empty without countOnly and after close(). */
  dropCounts(): DropCount[];
}

/**
 * TCP packets the kernel dropped, with why.
 *
 * @example
 * await using d = drops({ reasons: ['NO_SOCKET', 'TCP_CSUM'] });
 * for await (const e of d) console.log(e.reason, e.saddr, e.dport);
 */
const dropReason = (r: RawTcpEvent): string | undefined => (r.kind === EV.DROP ? reasonOf(r, 'drop') : undefined);
const dropEvent = lazyEvents<RawTcpEvent, DropEvent>('DropEvent', {
  type: (r) => (r.kind === EV.DROP ? 'drop' : 'bad_csum'),
  ...BASE_FIELDS,
  reason: dropReason,
  reasonCode: (r) => (dropReason(r) === undefined ? undefined : r.reason),
  portsKnown: (r) => portsKnown(r),
  seq: (r) => r.seq,
  flags: (r) => tcpFlags(r.tcp_flags),
  flagBits: (r) => r.tcp_flags,
});

export function drops(options: DropsOptions = {}): TcpProbe<DropEvent, DropCounter> {
  const filter = compileFilter(options, 'drops', ['maxEventsPerSec', 'badChecksums', 'reasons', 'countOnly']);
  if (options.badChecksums !== undefined && typeof options.badChecksums !== 'boolean') throw new TypeError('drops(): badChecksums must be a boolean');
  if (options.countOnly !== undefined && typeof options.countOnly !== 'boolean') throw new TypeError('drops(): countOnly must be a boolean');
  const countOnly = options.countOnly ?? false;
  if (countOnly && filter.cidrs.length) throw new TypeError('drops(): countOnly counts in the kernel, which filters by port only: leave out the address filter, or count the events yourself');
  let reasons: Set<string> | undefined;
  if (options.reasons !== undefined) {
    const known = new Set(kernelEnum('skb_drop_reason', 'SKB_DROP_REASON_').values());
    reasons = new Set(asArray(options.reasons, 'drops(): reasons').map((r) => {
      const name = String(r).toUpperCase().replace(/^SKB_DROP_REASON_/, '');
      // Before 5.17 skb:kfree_skb carries no reason (and the kernel has no enum
      // skb_drop_reason): no drop could ever match, so a reasons filter is refused up front.
      if (!known.size) throw new TypeError(`drops(): unknown drop reason '${String(r)}' on this kernel: it has no drop reasons (enum skb_drop_reason, Linux 5.17+); leave out reasons`);
      if (!known.has(name)) throw new TypeError(`drops(): unknown drop reason '${String(r)}' on this kernel (known: ${[...known].slice(0, 12).join(', ')}, ...)`);
      return name;
    }));
  }
  const programs = [{ program: 'tev_drop', tracepoint: 'skb/kfree_skb', provides: 'dropped packets' }];
  if (options.badChecksums ?? true) programs.push({ program: 'tev_bad_csum', tracepoint: 'tcp/tcp_bad_csum', provides: 'bad checksum events (tcp:tcp_bad_csum appeared in Linux 5.12)' });
  // The reasons' codes, marked in the kernel's drop_reasons map: other drops stay there.
  const codes: number[] = [];
  if (reasons) {
    for (const [value, name] of kernelEnum('skb_drop_reason', 'SKB_DROP_REASON_')) {
      if (reasons.has(name) && value >= 0 && value < DROP_REASONS_MAX) codes.push(value);
    }
  }
  const probe = openTcpEvents<DropEvent>({
    probe: 'drops',
    filter,
    programs,
    globals: { ...(reasons ? { drop_reasons_only: 1 } : {}), ...(countOnly ? { drop_counts_only: 1 } : {}) },
    ...(reasons ? {
      setup: (obj: BpfObject) => { const m = obj.map<number, number>('drop_reasons'); for (const c of codes) m.set(c, 1); },
    } : {}),
    toEvent: (r) => {
      const drop = r.kind === EV.DROP;
      const reason = drop ? reasonOf(r, 'drop') : undefined;
      if (reasons && (reason === undefined || !reasons.has(reason)) && !(reasons.has('TCP_CSUM') && !drop)) return undefined;
      return dropEvent(r);
    },
  }, options);
  return Object.assign(probe, {
    dropCounts: (): DropCount[] => (countOnly && !probe.isClosed ? readDropCounts(probe.object) : []),
  });
}

/** The drop_counts array summed over CPUs, non-zero slots only, named (slot 0: no reason known). */
function readDropCounts(obj: BpfObject): DropCount[] {
  const out: DropCount[] = [];
  for (const [slot, perCpu] of obj.perCpuMap<number, bigint>('drop_counts').entries()) {
    const count = perCpu.reduce((n, v) => n + Number(v), 0);
    if (count > 0) out.push({ reason: slot === 0 ? undefined : dropReasonName(slot), count });
  }
  return out;
}
