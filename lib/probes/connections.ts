// SPDX-License-Identifier: MIT
// TCP connection lifecycle: open, every state transition, close with duration and bytes,
// with the owning process, from sock:inet_sock_set_state (bpf/conns.bpf.c).
import fs from 'node:fs';
import type { BpfObject } from '../bpf/object';
import { tcpStateName } from '../kernel/names';
import { listeningSockets } from '../owner/listeners';
import {
  ENDPOINT_FIELDS, EventEndpoints, TcpFilterOptions, TcpProbe, cidrPass, compileFilter, compilePids, fillPortFilter,
  filterGlobals, monoToDate, openTcpProbe, asArray,
} from './tcp_common';
import { lazyEvents } from './stream';
import type { ConnEvent as RawConnEvent } from '../generated/conns';

export type ConnectionEventType = 'open' | 'state' | 'close';

/** A connection's state change. saddr/sport are the local side, daddr/dport the remote side. */
export interface ConnectionEvent extends EventEndpoints {
  /** open: reached ESTABLISHED; state: any transition; close: reached CLOSE (with totals). */
  type: ConnectionEventType;
  time: Date;
  /** bpf_ktime_get_ns() of the event (CLOCK_MONOTONIC). */
  tsNs: bigint;
  /**
   * The kernel's socket cookie (as SO_COOKIE / bpf_get_socket_cookie give it). 0n only for
   * sockets that existed before the probe started, and on the LISTEN->SYN_RECV transition
   * of a passive socket (the cookie is assigned when its handshake completes).
   */
  cookie: bigint;
  /** Owning process (tgid) and thread; 0 when unknown. */
  pid: number;
  tid: number;
  comm: string;
  /** How the owner was found: the connect() caller, the listener on the local port, or the
   * last process that called recv/send on the socket. */
  owner: 'connect' | 'listener' | 'syscall' | 'unknown';
  direction: 'active' | 'passive' | 'unknown';
  oldstate: string;
  newstate: string;
  /** close: time since connect() / the SYN was received; 0 when the start was not seen. */
  durationNs: number;
  /** close: tcp_sock bytes_received / bytes_acked. */
  bytesReceived: number;
  bytesAcked: number;
  /** Network namespace inode. */
  netns: number;
}

export interface ConnectionsOptions extends TcpFilterOptions {
  /** Which event types to deliver (filtered in the kernel). Default: all. */
  events?: ConnectionEventType[];
  /** Only connections owned by these processes. */
  pids?: number[];
  /** Seed the owner map with sockets listening before the probe starts (reads /proc). Default true. */
  seedListeners?: boolean;
}


const TYPES: Record<number, ConnectionEventType> = { 1: 'open', 2: 'state', 3: 'close' };
const TYPE_BITS: Record<ConnectionEventType, number> = { open: 1 << 1, state: 1 << 2, close: 1 << 3 };
const DIRECTIONS = ['unknown', 'passive', 'active'] as const;
const OWNERS = ['unknown', 'connect', 'listener', 'syscall'] as const;

/** Seeds listen_owners with the listeners /proc shows now; returns how many. */
export function seedListenOwners(obj: BpfObject): number {
  const map = obj.map('listen_owners');
  let n = 0;
  for (const l of listeningSockets()) {
    try {
      map.set({ netns: l.netns, port: l.port, pad: 0 }, { pid: l.pid, tid: l.pid, comm: l.comm });
      n++;
    } catch { /* map full: the rest stay unknown */ }
  }
  return n;
}

/**
 * Follows TCP connections: one event when a connection is established (`open`), on each
 * state transition (`state`) and when it closes (`close`, with duration and bytes).
 *
 * @example
 * await using conns = connections({ events: ['close'] });
 * for await (const c of conns) console.log(c.pid, c.comm, c.daddr, c.bytesReceived);
 */
const connectionEvent = lazyEvents<RawConnEvent, ConnectionEvent>('ConnectionEvent', {
  type: (r) => TYPES[r.type] ?? 'state',
  time: (r) => monoToDate(r.ts_ns),
  tsNs: (r) => r.ts_ns,
  cookie: (r) => r.cookie,
  pid: (r) => r.pid,
  tid: (r) => r.tid,
  comm: (r) => r.comm,
  owner: (r) => OWNERS[r.owner_source] ?? 'unknown',
  direction: (r) => DIRECTIONS[r.direction] ?? 'unknown',
  ...ENDPOINT_FIELDS,
  oldstate: (r) => tcpStateName(r.oldstate),
  newstate: (r) => tcpStateName(r.newstate),
  durationNs: (r) => Number(r.duration_ns),
  bytesReceived: (r) => Number(r.bytes_received),
  bytesAcked: (r) => Number(r.bytes_acked),
  netns: (r) => r.netns,
});

export function connections(options: ConnectionsOptions = {}): TcpProbe<ConnectionEvent> {
  const filter = compileFilter(options, 'connections', ['events', 'pids', 'seedListeners']);
  const pids = compilePids(options.pids, 'connections');
  let mask = 0;
  for (const t of options.events === undefined ? (['open', 'state', 'close'] as const) : asArray(options.events, 'connections(): events')) {
    const bit = TYPE_BITS[t as ConnectionEventType];
    if (bit === undefined) throw new TypeError(`connections(): bad event type '${String(t)}': expected open, state or close`);
    mask |= bit;
  }
  if (!mask) throw new TypeError('connections(): events must name at least one of open, state, close');
  if (options.seedListeners !== undefined && typeof options.seedListeners !== 'boolean') throw new TypeError('connections(): seedListeners must be a boolean');
  const seed = options.seedListeners ?? true;

  return openTcpProbe<ConnectionEvent>({
    probe: 'connections',
    object: 'conns',
    ring: 'conn_events',
    allPrograms: ['conns_set_state', 'conns_recv_length', 'conns_send_length', 'conns_sockops'],
    programs: [
      { program: 'conns_set_state', tracepoint: 'sock/inet_sock_set_state', provides: 'connection events' },
      { program: 'conns_recv_length', tracepoint: 'sock/sock_recv_length', provides: 'owner refinement from recvmsg() (owners of passive sockets come from the listener only)', optional: true },
      { program: 'conns_send_length', tracepoint: 'sock/sock_send_length', provides: 'owner refinement from sendmsg()', optional: true },
      { program: 'conns_sockops', provides: 'socket cookies for new connections (cookie stays 0)', cgroup: true, optional: true },
    ],
    globals: { ...filterGlobals(filter), event_mask: mask },
    setup(obj) {
      fillPortFilter(obj, filter);
      if (seed) seedListenOwners(obj);
    },
    lazy: true,
    toEvent(raw) {
      const r = raw as RawConnEvent;
      if (pids.size && !pids.has(r.pid)) return undefined;
      if (filter.cidrs.length && !cidrPass(filter, r.family, r.saddr, r.daddr)) return undefined;
      return connectionEvent(r);
    },
  }, options);
}

/** The network namespace inode of this process (what ConnectionEvent.netns holds). */
export function currentNetns(): number {
  return fs.statSync('/proc/self/ns/net').ino;
}
