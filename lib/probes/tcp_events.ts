// SPDX-License-Identifier: MIT
// The object the retransmits, rtt, resets and drops probes share (bpf/tcpevents.bpf.c):
// one ring of `struct tcp_event`, each probe loading only its own programs.
import { dropReasonName, resetReasonName, tcpStateName } from '../kernel/names';
import type { BpfObject } from '../bpf/object';
import type { EventFields, ProbeOptions } from './stream';
import type { TcpEvent } from '../generated/tcpevents';
import {
  CompiledFilter, ENDPOINT_FIELDS, EventEndpoints, ProgramNeed, TcpProbe, cidrPass, fillPortFilter, filterGlobals,
  monoToDate, openTcpProbe,
} from './tcp_common';

/** struct tcp_event, as generated from the object's BTF. */
export type RawTcpEvent = TcpEvent;

export const EV = { RETRANSMIT: 1, RETRANSMIT_SYNACK: 2, RTT: 3, RESET_SENT: 4, RESET_RECEIVED: 5, DROP: 6, BAD_CSUM: 7 } as const;
const REASON_KNOWN = 1;
const PORTS_KNOWN = 2;

export const TCP_EVENT_PROGRAMS = ['tev_retransmit', 'tev_retransmit_synack', 'tev_rtt', 'tev_send_reset', 'tev_receive_reset', 'tev_drop', 'tev_bad_csum', 'tev_sockops'] as const;

/** The sock_ops program that gives new connections a cookie (optional: cookies stay 0 without it). */
export const COOKIE_PROGRAM: ProgramNeed = { program: 'tev_sockops', provides: 'socket cookies for new connections (cookie stays 0)', cgroup: true, optional: true };

/** Fields every tcpevents-based event has. */
export interface TcpEventBase extends EventEndpoints {
  time: Date;
  tsNs: bigint;
  /** Kernel socket cookie; 0n when the socket never had one or there is no socket. */
  cookie: bigint;
}

/** TcpEventBase, computed when read (lazyEvents). */
export const BASE_FIELDS: EventFields<RawTcpEvent, TcpEventBase> = {
  time: (r) => monoToDate(r.ts_ns),
  tsNs: (r) => r.ts_ns,
  cookie: (r) => r.cookie,
  ...ENDPOINT_FIELDS,
};

export function stateName(state: number): string {
  return tcpStateName(state);
}

/** The kernel's name of a reason, or undefined when the tracepoint has no reason field. */
export function reasonOf(r: RawTcpEvent, kind: 'drop' | 'reset'): string | undefined {
  if (!(r.flags & REASON_KNOWN)) return undefined;
  return kind === 'drop' ? dropReasonName(r.reason) : resetReasonName(r.reason);
}

export function portsKnown(r: RawTcpEvent): boolean {
  return (r.flags & PORTS_KNOWN) !== 0;
}


export function openTcpEvents<Event>(spec: {
  probe: string;
  filter: CompiledFilter;
  programs: ProgramNeed[];
  globals?: Record<string, unknown>;
  setup?(obj: BpfObject): void;
  toEvent(r: RawTcpEvent): Event | undefined;
}, options: ProbeOptions & { maxEventsPerSec?: number }): TcpProbe<Event> {
  const cap = options.maxEventsPerSec;
  if (cap !== undefined && !(typeof cap === 'number' && cap >= 10 && Number.isFinite(cap))) {
    throw new TypeError(`${spec.probe}(): maxEventsPerSec must be a number >= 10, got ${JSON.stringify(cap)}`);
  }
  const probe = openTcpProbe<Event>({
    probe: spec.probe,
    object: 'tcpevents',
    ring: 'tcp_events',
    allPrograms: TCP_EVENT_PROGRAMS,
    programs: [...spec.programs, COOKIE_PROGRAM],
    globals: { ...filterGlobals(spec.filter), ...spec.globals, tcp_events_per_slot: cap === undefined ? 0 : Math.ceil(cap / 10) },
    setup(obj) {
      fillPortFilter(obj, spec.filter);
      spec.setup?.(obj);
    },
    toEvent(raw) {
      const r = raw as RawTcpEvent;
      if (spec.filter.cidrs.length && !cidrPass(spec.filter, r.family, r.saddr, r.daddr)) return undefined;
      return spec.toEvent(r);
    },
    lazy: true,
  }, options);
  // Events the cap kept in the kernel, beside received and lost; kept past close.
  const baseStats = probe.stats.bind(probe);
  const baseClose = probe.close.bind(probe);
  let sampled = 0;
  const readSampled = (): number => {
    if (!probe.isClosed) {
      try { sampled = Number(probe.object.global<bigint>('tcp_events_sampled')); } catch { /* object gone: last reading */ }
    }
    return sampled;
  };
  return Object.assign(probe, {
    stats: () => ({ ...baseStats(), sampled: readSampled() }),
    close: () => {
      readSampled();
      baseClose();
    },
  });
}
