// SPDX-License-Identifier: MIT
// detect(): opens the probes the detectors need, feeds their events and the kernel's SYN
// counters into the DetectionEngine, and delivers alerts as an async iterator (and to an
// onAlert hook). Counting happens in the kernel; decisions in TypeScript. Packet events
// are capped in the kernel (the rest counted as sampled), and every consumer loop yields
// to timers and I/O after a bounded slice of work, so ticks run on time during a flood.
import os from 'node:os';
import type { InterfaceRef } from '../bpf/netif';
import { interfaceName } from '../bpf/netif';
import type { XdpMode } from '../bpf/program';
import { packets, PacketStream, PacketEvent } from '../probes/packets';
import type { PacketProgram } from '../probes/packets';
import { readSynTables } from '../probes/syn-counts';
import { connections } from '../probes/connections';
import { resets } from '../probes/resets';
import { retransmits } from '../probes/retransmits';
import { drops } from '../probes/drops';
import type { Unavailable } from '../probes/tcp_common';
import type { LinkFollower } from '../net/link-watch';
import { kernelEnum } from '../kernel/names';
import { flagLetters } from '../bpf/packet';
import type { DetectAlert } from './alert';
import { DETECTORS, DetectionEngine, DetectorName } from './engine';
import { counterDelta, ListenCounters, readListenCounters } from './netstat';
import { resolveThresholds, ThresholdOptions, Thresholds } from './thresholds';
import { OLD_DATA_REASON, OUT_OF_WINDOW_REASONS } from './sequence';
import { consumeBounded } from '../util/bounded';

export interface DetectOptions {
  /** Interfaces whose incoming traffic is watched (tc ingress or XDP). At least one. */
  interfaces: InterfaceRef[];
  /** Any subset of the thresholds; the rest keep their defaults (DEFAULT_THRESHOLDS). */
  thresholds?: ThresholdOptions;
  /** Stops detection when aborted; the iterator then ends. */
  signal?: AbortSignal;
  /** Called with every alert as it is made (e.g. to plug in a guard). Errors are counted, not thrown. */
  onAlert?: (alert: DetectAlert) => void | Promise<void>;
  /** Turn detectors off: { anomaly: false }. Default: all on. */
  detectors?: Partial<Record<DetectorName, boolean>>;
  /** Packet hook: tc ingress (default) or XDP. */
  hook?: 'tc' | 'xdp';
  xdpMode?: XdpMode;
  /** How often windows are evaluated and kernel counters read, ms. @defaultValue 250 */
  tickMs?: number;
  /**
   * Addresses that are "this host" for the tracepoint probes (resets sent, connections,
   * retransmits, drops), which see every namespace: events of other addresses are
   * ignored. Default: the addresses of `interfaces`, refreshed every 5 s.
   */
  localAddresses?: string[];
  /** Most alerts kept for a slow reader; the oldest are dropped beyond it. @defaultValue 10000 */
  maxQueued?: number;
  /**
   * Events per second each probe's kernel side sends at most (packets: SYNs for
   * attribution and FIN/NULL/XMAS probes; resets, drops, retransmits); beyond it they are
   * counted as sampled instead of sent. SYN counts stay exact: they come from the kernel
   * tables. @defaultValue 5000
   */
  maxPacketEventsPerSec?: number;
}

export interface DetectStats {
  /** Events read per source probe. */
  events: Record<string, number>;
  /** Events lost in ring buffers (full), per probe. */
  lost: Record<string, number>;
  /** Events not sent by the kernel because of the events-per-second cap, per probe. */
  sampled: Record<string, number>;
  alerts: { raised: number; cleared: number; dropped: number };
  hookErrors: number;
  ticks: number;
  /** Kernel packet counters of the packet program (synacksOut, rstsOut: at tc egress). */
  packets?: { tcp: number; matched: number; emitted: number; sampled: number; syns: number; synacksOut: number; rstsOut: number };
  /** Incoming SYNs per second over the last tick, from the kernel counter. */
  synRate: number;
  /**
   * Handshakes completed (passive opens), from the kernel's counter in the connections
   * probe: exact even when events are sampled or lost; every namespace of the host.
   */
  handshakes?: number;
  /** SYNs of one epoch (about 268 ms) that give a source or prefix its own kernel counter. */
  synAdmission: number;
}

/** A running detector: async iterable of alerts. */
export interface Detector extends AsyncIterable<DetectAlert>, AsyncDisposable, LinkFollower {
  readonly thresholds: Thresholds;
  /** Parts a probe could not provide on this kernel (and the signal that is lost). */
  readonly unavailable: readonly Unavailable[];
  /** Raised alerts not cleared yet. */
  active(): DetectAlert[];
  stats(): DetectStats;
  /** Detaches everything and ends the iterator; idempotent. */
  close(): void;
  /**
   * Watches one more interface (one created after the start): its SYNs and probes count,
   * its addresses are this host's. False when watched already or no packet probe runs.
   */
  addInterface(ifindex: number, name: string): boolean;
  /** Lets go of an interface that disappeared. False when it was not watched. */
  removeInterface(ifindex: number): boolean;
  /** The engine (for tests and advanced use: feed synthetic signals, read baselines). */
  readonly engine: DetectionEngine;
  /**
   * The packet program the detectors read (undefined when none runs: no synFlood, portScan
   * or anomaly detector). Its SYN counters and interface counts can serve others (serve's
   * metrics) without a second program per interface. Closed with the detector.
   */
  readonly packetProgram: PacketProgram | undefined;
}

/** SYN-sketch epoch, ms (HH_EPOCH_SHIFT in bpf/packets.bpf.c) and cells per row (HH_WIDTH in bpf/include/heavy_hitters.h). */
const SKETCH_EPOCH_MS = 2 ** 28 / 1e6;
const SKETCH_WIDTH = 16384;

/**
 * Sketch admission for a SYN rate: half the SYNs per epoch of the smallest per-key limit,
 * raised above the sketch's noise at high rates (each cell then holds lambda = SYNs per
 * epoch / width random SYNs; lambda + 5 sqrt(lambda) is out of its reach).
 */
export function synAdmissionFor(minKeyRate: number, synRate: number): number {
  const base = Math.max(2, Math.floor((minKeyRate * SKETCH_EPOCH_MS) / 1000 / 2));
  const lambda = (synRate * SKETCH_EPOCH_MS) / 1000 / SKETCH_WIDTH;
  return Math.max(base, Math.ceil(lambda + 5 * Math.sqrt(lambda) + 1));
}


const OPTION_KEYS = ['interfaces', 'thresholds', 'signal', 'onAlert', 'detectors', 'hook', 'xdpMode', 'tickMs', 'localAddresses', 'maxQueued', 'maxPacketEventsPerSec'];

/** Packets the detectors look at: SYNs (attribution of counts) and segments with no SYN, ACK or RST (FIN/NULL/XMAS probes). */
export const DETECT_PACKET_FILTER = 'tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == tcp-syn or tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == 0';

/** A detector's events summed over its probes: delivered, lost (ring full), sampled out in the kernel. */
export function detectDelivery(s: DetectStats): { received: number; lost: number; sampled: number; lossCounted: boolean } {
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  return { received: sum(s.events), lost: sum(s.lost), sampled: sum(s.sampled), lossCounted: true };
}

interface Closable { close(): void; stats?(): { received: number; lost: number; sampled?: number } }

/**
 * Watches incoming TCP traffic for SYN floods, port scans, rate anomalies and sequence
 * anomalies; yields alerts ({ kind, state: 'raised' | 'cleared', at, summary, evidence, key }).
 *
 * @example
 * const ac = new AbortController();
 * for await (const alert of detect({ interfaces: ['eth0'], signal: ac.signal })) {
 *   console.log(alert.state, alert.kind, alert.summary);
 * }
 */
export function detect(options: DetectOptions): Detector {
  if (options === null || typeof options !== 'object') throw new TypeError('detect(): options must be an object');
  for (const key of Object.keys(options)) if (!OPTION_KEYS.includes(key)) throw new TypeError(`detect(): unknown option '${key}' (known: ${OPTION_KEYS.join(', ')})`);
  if (!Array.isArray(options.interfaces) || options.interfaces.length === 0) throw new TypeError('detect(): interfaces must name at least one interface, e.g. { interfaces: [\'eth0\'] }');
  const thresholds = resolveThresholds(options.thresholds);
  const enabled: Partial<Record<DetectorName, boolean>> = {};
  for (const [k, v] of Object.entries(options.detectors ?? {})) {
    if (!DETECTORS.includes(k as DetectorName)) throw new TypeError(`detect(): unknown detector '${k}' (known: ${DETECTORS.join(', ')})`);
    if (typeof v !== 'boolean') throw new TypeError(`detect(): detectors.${k} must be a boolean`);
    enabled[k as DetectorName] = v;
  }
  const on = (d: DetectorName) => enabled[d] ?? true;
  const tickMs = options.tickMs ?? 250;
  if (!(typeof tickMs === 'number' && tickMs >= 10)) throw new TypeError('detect(): tickMs must be a number >= 10');
  if (options.onAlert !== undefined && typeof options.onAlert !== 'function') throw new TypeError('detect(): onAlert must be a function');
  const maxQueued = options.maxQueued ?? 10000;
  if (!(Number.isInteger(maxQueued) && maxQueued > 0)) throw new TypeError('detect(): maxQueued must be a positive integer');
  const maxEventRate = options.maxPacketEventsPerSec ?? 5000;
  if (!(typeof maxEventRate === 'number' && maxEventRate >= 10 && Number.isFinite(maxEventRate))) throw new TypeError('detect(): maxPacketEventsPerSec must be a number >= 10');

  // ---- alert delivery -----------------------------------------------------------------
  const queue: DetectAlert[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let failure: Error | undefined;
  const minKeyRate = Math.min(thresholds.synFlood.sourceRate, thresholds.synFlood.prefixRate);
  const stats: DetectStats = {
    events: {}, lost: {}, sampled: {}, alerts: { raised: 0, cleared: 0, dropped: 0 }, hookErrors: 0, ticks: 0,
    synRate: 0, synAdmission: synAdmissionFor(minKeyRate, 0),
  };
  const deliver = (alert: DetectAlert): void => {
    stats.alerts[alert.state]++;
    if (options.onAlert) {
      try {
        const r = options.onAlert(alert);
        if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(() => { stats.hookErrors++; });
      } catch {
        stats.hookErrors++;
      }
    }
    queue.push(alert);
    if (queue.length > maxQueued) { queue.shift(); stats.alerts.dropped++; }
    wake?.();
  };
  const engine = new DetectionEngine(thresholds, deliver, enabled);

  // ---- what is "this host" ------------------------------------------------------------
  const ifnames = options.interfaces.map((i) => (typeof i === 'number' ? interfaceName(i) ?? String(i) : i));
  let local = new Set<string>();
  const refreshLocal = (): void => {
    if (options.localAddresses) { local = new Set(options.localAddresses); return; }
    const all = os.networkInterfaces();
    const next = new Set<string>();
    for (const name of ifnames) for (const a of all[name] ?? []) next.add(a.address.replace(/%.*$/, ''));
    local = next;
  };
  refreshLocal();
  const isLocal = (address: string): boolean => local.has(address);

  // ---- probes -------------------------------------------------------------------------
  const closables: Array<[string, Closable]> = [];
  const pumps: Array<Promise<void>> = [];
  const unavailable: Unavailable[] = [];
  const fail = (e: unknown): void => {
    if (closed) return;
    failure = e instanceof Error ? e : new Error(String(e));
    detector.close();
  };
  // Bounded work per turn (lib/util/bounded.ts): ticks, scrapes and sinks run during a flood.
  const pump = <E>(name: string, stream: { batches(): AsyncIterableIterator<E[]> }, handle: (e: E) => void): void => {
    stats.events[name] = 0;
    pumps.push(consumeBounded(stream.batches(), handle, {
      stopped: () => closed,
      onBatch: (n) => { stats.events[name]! += n; },
    }).catch(fail));
  };

  let packetStream: PacketStream | undefined;
  let connsProbe: { object: { perCpuMap<K, V>(name: string): { get(key: K): V[] | undefined } } } | undefined;
  try {
    const needPackets = on('synFlood') || on('portScan') || on('anomaly');
    if (needPackets) {
      packetStream = packets({
        interfaces: options.interfaces,
        hook: options.hook ?? 'tc',
        ...(options.xdpMode ? { xdpMode: options.xdpMode } : {}),
        filter: DETECT_PACKET_FILTER,
        countSyns: true,
        synAdmission: stats.synAdmission,
        maxEventsPerSec: maxEventRate,
        egressCounters: true,
        latencyMs: 50,
      });
      closables.push(['packets', packetStream]);
      const ps = packetStream;
      pump<PacketEvent>('packets', ps, (p) => {
        const now = Number(p.epochNs) / 1e6;
        const bits = p.flagBits;
        if ((bits & 0x16) === 0x02) engine.synSample(now, p.saddr, p.dport);
        else engine.stealthSegment(now, p.saddr, p.daddr, p.dport, bits);
      });
    }
    const tcpProbe = <P extends Closable & { unavailable: readonly Unavailable[] }>(name: string, open: () => P): P | undefined => {
      try {
        const p = open();
        unavailable.push(...p.unavailable);
        closables.push([name, p]);
        return p;
      } catch (e) {
        if ((e as Error).name !== 'NotSupportedError') throw e;
        unavailable.push({ program: name, tracepoint: '', reason: (e as Error).message });
        return undefined;
      }
    };
    if (on('synFlood') || on('anomaly')) {
      const conns = tcpProbe('connections', () => connections({ events: ['open'], seedListeners: false, latencyMs: 50 }));
      connsProbe = conns;
      if (conns) pump('connections', conns, (c) => {
        if (c.direction === 'passive' && isLocal(c.saddr)) engine.passiveOpen(c.time.getTime(), c.daddr, c.sport);
      });
      const rtx = tcpProbe('retransmits', () => retransmits({ latencyMs: 50, maxEventsPerSec: maxEventRate }));
      if (rtx) pump('retransmits', rtx, (r) => {
        if (isLocal(r.saddr)) engine.retransmit(r.time.getTime(), r.daddr, r.sport, r.type === 'synack');
      });
    }
    if (on('portScan') || on('anomaly')) {
      const rst = tcpProbe('resets', () => resets({ directions: ['sent'], latencyMs: 50, maxEventsPerSec: maxEventRate }));
      if (rst) pump('resets', rst, (r) => {
        if (isLocal(r.saddr)) engine.resetSent(r.time.getTime(), r.saddr, r.sport, r.daddr, r.reason);
      });
    }
    // Before 6.10 tcp_send_reset carries no reason: closed-port probes then come from
    // kfree_skb drops with reason NO_SOCKET (SYN or stealth segments).
    const closedFromDrops = on('portScan') && kernelEnum('sk_rst_reason').size === 0;
    if (on('sequence') || closedFromDrops) {
      // Only the reasons the detectors use leave the kernel: drops of other reasons (a
      // flood's) neither cost user space nor use up the events cap.
      const known = new Set(kernelEnum('skb_drop_reason', 'SKB_DROP_REASON_').values());
      const wanted = [...(on('sequence') ? [...OUT_OF_WINDOW_REASONS, OLD_DATA_REASON, 'TCP_CSUM'] : []), ...(closedFromDrops ? ['NO_SOCKET'] : [])].filter((r) => known.has(r));
      const dr = tcpProbe('drops', () => drops({ badChecksums: on('sequence'), latencyMs: 50, maxEventsPerSec: maxEventRate, ...(known.size ? { reasons: wanted } : {}) }));
      if (dr) pump('drops', dr, (d) => {
        if (!isLocal(d.daddr)) return;
        const now = d.time.getTime();
        const letters = flagLetters(d.flagBits);
        if (closedFromDrops && d.reason === 'NO_SOCKET' && d.portsKnown && (letters === 'S' || !/[SR.]/.test(letters))) {
          engine.portScan?.probe(now, d.saddr, d.dport, 'closed_port', d.daddr);
        }
        if (!on('sequence')) return;
        const seg = { source: d.saddr, sport: d.sport, dest: d.daddr, dport: d.dport, seq: d.seq, flags: letters };
        if (d.type === 'bad_csum') engine.badChecksum(now, seg);
        else engine.drop(now, d.reason, seg);
      });
    }
  } catch (e) {
    for (const [, c] of closables) c.close();
    throw e;
  }

  // ---- periodic work: kernel SYN counters, netstat, evaluation -----------------------
  const prevSyn = { sources: new Map<string, number>(), prefixes: new Map<string, number>(), ports: new Map<number, number>() };
  let prevNetstat: ListenCounters | undefined = readListenCounters();
  let lastLocalRefresh = Date.now();
  let prevSynTotal = 0;
  let prevPollAt = Date.now();
  const pollSyns = (now: number): void => {
    if (!packetStream) return;
    const snap = readSynTables(packetStream.program);
    const delta = <K>(rows: Array<{ key: K; count: number }>, prev: Map<K, number>): Array<[K, number]> => {
      const out: Array<[K, number]> = [];
      const seen = new Set<K>();
      for (const { key, count } of rows) {
        seen.add(key);
        const before = prev.get(key) ?? 0;
        const d = count >= before ? count - before : count;
        if (d > 0) out.push([key, d]);
        prev.set(key, count);
      }
      for (const k of prev.keys()) if (!seen.has(k)) prev.delete(k);
      return out;
    };
    const total = packetStream.counters().syns;
    engine.synCounts(now, {
      total: Math.max(0, total - prevSynTotal),
      intervalMs: now - prevPollAt,
      sources: delta(snap.sources.map((r) => ({ key: r.address, count: r.count })), prevSyn.sources),
      prefixes: delta(snap.prefixes.map((r) => ({ key: r.cidr, count: r.count })), prevSyn.prefixes),
      ports: delta(snap.ports.map((r) => ({ key: r.port, count: r.count })), prevSyn.ports),
    });
    prevSynTotal = total;
    prevPollAt = now;
  };
  // The SYN rate from the kernel counter; it sets the sketch's admission threshold.
  let prevSyns = 0;
  let prevSynAt = Date.now();
  const followSynRate = (now: number): void => {
    if (!packetStream) return;
    const syns = packetStream.counters().syns;
    const seconds = (now - prevSynAt) / 1000;
    if (seconds <= 0) return;
    stats.synRate = Math.max(0, syns - prevSyns) / seconds;
    prevSyns = syns;
    prevSynAt = now;
    const admission = synAdmissionFor(minKeyRate, stats.synRate);
    if (admission !== stats.synAdmission) {
      packetStream.program.setSynAdmission(admission);
      stats.synAdmission = admission;
    }
  };
  const tick = (): void => {
    if (closed) return;
    try {
      const now = Date.now();
      stats.ticks++;
      followSynRate(now);
      if (now - lastLocalRefresh > 5000) { refreshLocal(); lastLocalRefresh = now; }
      if (on('synFlood') || on('anomaly')) pollSyns(now);
      const nextNetstat = readListenCounters();
      if (prevNetstat && nextNetstat) engine.netstat(now, counterDelta(prevNetstat, nextNetstat));
      prevNetstat = nextNetstat ?? prevNetstat;
      engine.tick(now);
    } catch (e) {
      fail(e);
    }
  };
  const timer = setInterval(tick, tickMs);

  const onAbort = (): void => detector.close();

  const detector: Detector = {
    thresholds,
    engine,
    packetProgram: packetStream?.program,
    unavailable: Object.freeze(unavailable),
    active: () => engine.activeAlerts(),
    stats() {
      for (const [name, c] of closables) {
        const s = c.stats?.();
        if (s) stats.lost[name] = s.lost;
        if (s?.sampled !== undefined) stats.sampled[name] = s.sampled;
      }
      if (packetStream) {
        try {
          const k = packetStream.counters();
          stats.packets = { tcp: k.tcp, matched: k.matched, emitted: k.emitted, sampled: k.sampledOut, syns: k.syns, synacksOut: k.synacksOut, rstsOut: k.rstsOut };
          stats.sampled['packets'] = k.sampledOut;
        } catch { /* closed meanwhile */ }
      }
      if (connsProbe && !closed) {
        try {
          const perCpu = connsProbe.object.perCpuMap<number, { passive_established: bigint }>('conns_counters').get(0) ?? [];
          stats.handshakes = perCpu.reduce((n, v) => n + Number(v.passive_established), 0);
        } catch { /* closed meanwhile: the last reading stands */ }
      }
      return structuredClone(stats);
    },
    close() {
      if (closed) return;
      const last = detector.stats();
      stats.lost = last.lost;
      stats.sampled = last.sampled;
      closed = true;
      clearInterval(timer);
      options.signal?.removeEventListener('abort', onAbort);
      for (const [, c] of closables) {
        try { c.close(); } catch { /* already closed */ }
      }
      wake?.();
    },
    async *[Symbol.asyncIterator](): AsyncIterator<DetectAlert> {
      try {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (closed) break;
          await new Promise<void>((resolve) => { wake = resolve; });
          wake = undefined;
        }
        while (queue.length) yield queue.shift()!;
        if (failure) throw failure;
      } finally {
        detector.close();
      }
    },
    async [Symbol.asyncDispose]() {
      detector.close();
      await Promise.allSettled(pumps);
    },
    addInterface(ifindex, name) {
      if (closed || !packetStream) return false;
      const added = packetStream.program.addInterface(ifindex, name);
      if (added) ifnames.push(name);
      // A link notice also comes when an interface goes up, often with its addresses.
      refreshLocal();
      return added;
    },
    removeInterface(ifindex) {
      if (!packetStream) return false;
      const name = packetStream.interfaces.get(ifindex);
      if (!packetStream.program.removeInterface(ifindex)) return false;
      const at = name === undefined ? -1 : ifnames.indexOf(name);
      if (at >= 0) ifnames.splice(at, 1);
      refreshLocal();
      return true;
    },
  };
  if (options.signal?.aborted) detector.close();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  return detector;
}
