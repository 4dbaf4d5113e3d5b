// SPDX-License-Identifier: MIT
// timelines(): runs the connection, packet and TCP event probes together and yields each
// connection's joined timeline when it closes.
import { connections } from '../probes/connections';
import { packets } from '../probes/packets';
import { retransmits } from '../probes/retransmits';
import { rtt } from '../probes/rtt';
import { resets } from '../probes/resets';
import { drops } from '../probes/drops';
import type { InterfaceRef } from '../bpf/netif';
import { merge } from '../util/merge';
import { ConnectionTimeline, TimelineBuilder, TimelineOptions } from './index';

/** How long a closed connection's timeline waits for events still in the other probes' rings. */
const CLOSE_GRACE_MS = 100;

export interface TimelinesOptions extends TimelineOptions {
  /** Interfaces whose incoming packets join the timelines (tc ingress). */
  interfaces: InterfaceRef[];
  /** Only connections with one of these local or remote ports. */
  ports?: number[];
  signal?: AbortSignal;
  /** Called once every probe is attached (before the first timeline can arrive). */
  onReady?: () => void;
}

/**
 * Closed connections, each with its packets, state changes, retransmits, RTT samples,
 * resets and drops in kernel time order.
 *
 * @example
 * for await (const t of timelines({ interfaces: ['lo'], ports: [8080] })) {
 *   console.log(t.local, t.remote, t.entries.length);
 * }
 */
export async function* timelines(options: TimelinesOptions): AsyncIterableIterator<ConnectionTimeline> {
  const ports = options.ports ?? [];
  const common = { ...(ports.length ? { ports } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const builderOptions: TimelineOptions = {};
  if (options.maxEntries !== undefined) builderOptions.maxEntries = options.maxEntries;
  if (options.maxConnections !== undefined) builderOptions.maxConnections = options.maxConnections;
  const builder = new TimelineBuilder(builderOptions);
  const filter = ports.length ? ports.map((p) => `port ${p}`).join(' or ') : undefined;
  const opened: Array<{ close(): void }> = [];
  // Every probe opened so far is closed if a later one fails to open.
  const track = <T extends { close(): void }>(probe: T): T => { opened.push(probe); return probe; };
  const signal = options.signal ? { signal: options.signal } : {};
  let stopMerge: (() => void) | undefined;
  try {
    const sources = {
      conns: track(connections(common)),
      packets: track(packets({ interfaces: options.interfaces, ...(filter ? { filter } : {}), ...signal })),
      retrans: track(retransmits(common)),
      rtt: track(rtt({ ...common, histogram: false })),
      resets: track(resets(common)),
      drops: track(drops(common)),
    };
    // The first next() starts every reader; only then is the caller told to go ahead.
    const merged = merge(sources);
    stopMerge = () => { void merged.return?.(undefined); };
    let step = merged.next();
    options.onReady?.();
    // Each probe has its own ring and reader: a packet or RTT sample from just before a
    // close can be read after the close event. A closed timeline waits CLOSE_GRACE_MS for them.
    const closing: Array<{ timeline: ConnectionTimeline; due: number }> = [];
    const TICK = Symbol('tick');
    for (;;) {
      let r: Awaited<typeof step> | typeof TICK;
      if (closing.length) {
        const wait = Math.max(0, closing[0]!.due - Date.now());
        let timer: NodeJS.Timeout | undefined;
        r = await Promise.race([step, new Promise<typeof TICK>((resolve) => { timer = setTimeout(() => resolve(TICK), wait); })]);
        clearTimeout(timer);
      } else {
        r = await step;
      }
      if (r !== TICK) {
        if (r.done) break;
        step = merged.next();
        const item = r.value;
        switch (item.source) {
          case 'conns': {
            const done = builder.addConnection(item.value, true);
            if (done) closing.push({ timeline: done, due: Date.now() + CLOSE_GRACE_MS });
            break;
          }
          case 'packets': builder.addPacket(item.value); break;
          case 'retrans': builder.addTcpEvent('retransmit', item.value); break;
          case 'rtt': builder.addTcpEvent('rtt', item.value); break;
          case 'resets': builder.addTcpEvent('reset', item.value); break;
          case 'drops': builder.addTcpEvent('drop', item.value); break;
        }
      }
      while (closing.length && closing[0]!.due <= Date.now()) yield builder.release(closing.shift()!.timeline);
    }
    for (const c of closing) yield builder.release(c.timeline);
  } finally {
    stopMerge?.();
    for (const probe of opened) probe.close();
  }
}
