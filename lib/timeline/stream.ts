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
  try {
    const sources = {
      conns: track(connections(common)),
      packets: track(packets({ interfaces: options.interfaces, ...(filter ? { filter } : {}), ...signal })),
      retrans: track(retransmits(common)),
      rtt: track(rtt({ ...common, histogram: false })),
      resets: track(resets(common)),
      drops: track(drops(common)),
    };
    options.onReady?.();
    for await (const item of merge(sources)) {
      switch (item.source) {
        case 'conns': {
          const done = builder.addConnection(item.value);
          if (done) yield done;
          break;
        }
        case 'packets': builder.addPacket(item.value); break;
        case 'retrans': builder.addTcpEvent('retransmit', item.value); break;
        case 'rtt': builder.addTcpEvent('rtt', item.value); break;
        case 'resets': builder.addTcpEvent('reset', item.value); break;
        case 'drops': builder.addTcpEvent('drop', item.value); break;
      }
    }
  } finally {
    for (const probe of opened) probe.close();
  }
}
