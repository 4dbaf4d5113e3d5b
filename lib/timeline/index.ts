// SPDX-License-Identifier: MIT
// One view per connection that joins its packets, state changes, retransmits, RTT samples,
// resets and drops in kernel time order. Events are matched by socket cookie where they
// carry one, else by the connection's two endpoints (packets at tc/XDP have no socket yet).
import type { ConnectionEvent } from '../probes/connections';
import type { PacketEvent } from '../probes/packets';
import type { TcpEventBase } from '../probes/tcp_events';
import { formatEndpoint } from '../net/addr';
import { flagLetters } from '../bpf/packet';

export type TimelineEntry =
  | { kind: 'packet'; tsNs: bigint; packet: PacketEvent }
  | { kind: 'state'; tsNs: bigint; connection: ConnectionEvent }
  | { kind: 'retransmit' | 'rtt' | 'reset' | 'drop'; tsNs: bigint; event: TcpEventBase & { type: string } };

export interface ConnectionTimeline {
  /** Socket cookie, once a connection event has named it (0n until then). */
  cookie: bigint;
  /** `local addr:port <-> remote addr:port` as the connection probe reports it. */
  local: string;
  remote: string;
  pid: number;
  comm: string;
  closed: boolean;
  /** Entries sorted by kernel time (CLOCK_MONOTONIC ns). */
  entries: TimelineEntry[];
  /** Entries dropped because the connection exceeded maxEntries. */
  truncated: number;
}

export interface TimelineOptions {
  /** Entries kept per connection; later ones are counted in `truncated`. Default 2000. */
  maxEntries?: number;
  /** Connections tracked at once; the least recently active is evicted. Default 10000. */
  maxConnections?: number;
}

const endpoint = formatEndpoint;

/**
 * Key of one socket: its local then its remote endpoint. Directional, so the two sockets of a
 * connection whose both ends are on this host (client and server) stay two timelines.
 */
function socketKey(local: string, remote: string): string {
  return `${local}|${remote}`;
}

const byTime = (a: TimelineEntry, b: TimelineEntry): number => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0);

export class TimelineBuilder {
  private readonly byKey = new Map<string, ConnectionTimeline>();
  private readonly byCookie = new Map<bigint, ConnectionTimeline>();
  private readonly maxEntries: number;
  private readonly maxConnections: number;

  constructor(options: TimelineOptions = {}) {
    this.maxEntries = options.maxEntries ?? 2000;
    this.maxConnections = options.maxConnections ?? 10000;
  }

  get size(): number {
    return this.byKey.size;
  }

  private timelineFor(local: string, remote: string, cookie: bigint): ConnectionTimeline {
    const key = socketKey(local, remote);
    let timeline = (cookie ? this.byCookie.get(cookie) : undefined) ?? this.byKey.get(key);
    if (timeline && timeline.closed && cookie && timeline.cookie && timeline.cookie !== cookie) {
      timeline = undefined; // the same endpoints reused by a new connection
    }
    if (!timeline) {
      timeline = { cookie, local, remote, pid: 0, comm: '', closed: false, entries: [], truncated: 0 };
      if (this.byKey.size >= this.maxConnections) this.evictOldest();
    } else {
      this.byKey.delete(key); // re-inserted below: Map order is recency order
    }
    this.byKey.set(key, timeline);
    if (cookie && !timeline.cookie) timeline.cookie = cookie;
    if (timeline.cookie) this.byCookie.set(timeline.cookie, timeline);
    return timeline;
  }

  private evictOldest(): void {
    const [key, oldest] = this.byKey.entries().next().value as [string, ConnectionTimeline];
    this.byKey.delete(key);
    if (oldest.cookie) this.byCookie.delete(oldest.cookie);
  }

  private push(timeline: ConnectionTimeline, entry: TimelineEntry): void {
    if (timeline.entries.length >= this.maxEntries) {
      timeline.truncated++;
      return;
    }
    timeline.entries.push(entry);
  }

  /**
   * Adds a connection event; returns the finished timeline when this event closes it
   * (with keepOpen, it stays tracked until release()).
   */
  addConnection(event: ConnectionEvent, keepOpen = false): ConnectionTimeline | undefined {
    const timeline = this.timelineFor(endpoint(event.saddr, event.sport), endpoint(event.daddr, event.dport), event.cookie);
    timeline.local = endpoint(event.saddr, event.sport);
    timeline.remote = endpoint(event.daddr, event.dport);
    if (event.pid) {
      timeline.pid = event.pid;
      timeline.comm = event.comm;
    }
    // The kernel reports a transition once as 'state' and, when it opens or closes the
    // connection, again as 'open' / 'close' (same time): keep one entry, the richer event.
    const twin = this.sameTransition(timeline, event);
    if (twin) {
      if (event.type === 'close') twin.connection = event;
    } else {
      this.push(timeline, { kind: 'state', tsNs: event.tsNs, connection: event });
    }
    if (event.type !== 'close') return undefined;
    timeline.closed = true;
    timeline.entries.sort(byTime);
    if (!keepOpen) this.forget(timeline);
    return timeline;
  }

  /**
   * Stops tracking a closed timeline kept by addConnection(event, true) (so events from
   * other rings that arrive after its close still joined it); sorts it again.
   */
  release(timeline: ConnectionTimeline): ConnectionTimeline {
    timeline.entries.sort(byTime);
    if (this.byKey.get(socketKey(timeline.local, timeline.remote)) === timeline) this.forget(timeline);
    else if (timeline.cookie && this.byCookie.get(timeline.cookie) === timeline) this.byCookie.delete(timeline.cookie);
    return timeline;
  }

  /** The entry already holding this transition (same time and states), if any. */
  private sameTransition(timeline: ConnectionTimeline, event: ConnectionEvent): Extract<TimelineEntry, { kind: 'state' }> | undefined {
    for (let i = timeline.entries.length - 1; i >= 0; i--) {
      const e = timeline.entries[i]!;
      if (e.tsNs !== event.tsNs) continue;
      if (e.kind === 'state' && e.connection.oldstate === event.oldstate && e.connection.newstate === event.newstate) return e;
    }
    return undefined;
  }

  /** Adds an incoming packet (source = remote side). */
  addPacket(packet: PacketEvent): void {
    const remote = endpoint(packet.saddr, packet.sport);
    const local = endpoint(packet.daddr, packet.dport);
    this.push(this.timelineFor(local, remote, 0n), { kind: 'packet', tsNs: packet.tsNs, packet });
  }

  /**
   * Adds a retransmit, RTT sample, reset or drop. Their saddr/sport are the socket's local
   * side, except drops, whose saddr is the dropped packet's source (the remote side).
   */
  addTcpEvent(kind: 'retransmit' | 'rtt' | 'reset' | 'drop', event: TcpEventBase & { type: string }): void {
    const a = endpoint(event.saddr, event.sport), b = endpoint(event.daddr, event.dport);
    const timeline = kind === 'drop' ? this.timelineFor(b, a, event.cookie) : this.timelineFor(a, b, event.cookie);
    this.push(timeline, { kind, tsNs: event.tsNs, event });
  }

  /** The timeline of a connection by cookie, while it is tracked. */
  get(cookie: bigint): ConnectionTimeline | undefined {
    return this.byCookie.get(cookie);
  }

  /** Every tracked timeline, open ones included, each sorted by time. */
  all(): ConnectionTimeline[] {
    const out = [...this.byKey.values()];
    for (const t of out) t.entries.sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    return out;
  }

  private forget(timeline: ConnectionTimeline): void {
    this.byKey.delete(socketKey(timeline.local, timeline.remote));
    if (timeline.cookie) this.byCookie.delete(timeline.cookie);
  }
}

/** One line of a timeline entry, relative to the timeline's first entry. */
export function describeEntry(entry: TimelineEntry, startNs: bigint): string {
  const at = `+${(Number(entry.tsNs - startNs) / 1e6).toFixed(3)}ms`.padStart(12);
  switch (entry.kind) {
    case 'packet': {
      const p = entry.packet;
      const flags = p.flagBits ? flagLetters(p.flagBits) : '';
      return `${at} packet  in  [${flags}] seq ${p.seq >>> 0} ack ${p.ack >>> 0} win ${p.window} len ${p.payloadLen}`;
    }
    case 'state':
      return `${at} state   ${entry.connection.oldstate} -> ${entry.connection.newstate}${entry.connection.type === 'close' ? ` (rx ${entry.connection.bytesReceived} B, acked ${entry.connection.bytesAcked} B)` : ''}`;
    default: {
      const e = entry.event as TcpEventBase & { type: string; reason?: string; srttUs?: number; seq?: number };
      const detail = e.reason ? ` reason ${e.reason}` : e.srttUs !== undefined ? ` srtt ${e.srttUs} us` : e.seq !== undefined ? ` seq ${e.seq >>> 0}` : '';
      return `${at} ${entry.kind.padEnd(7)} ${e.type}${detail}`;
    }
  }
}
