// `tcpscope serve`: probes feeding the metrics, detectors raising alerts, an optional guard
// acting on them, and the exporters, run together until stopped.
import { connections } from '../probes/connections';
import { packets } from '../probes/packets';
import { readSynTables, synCounts } from '../probes/syn-counts';
import type { PacketProgram } from '../probes/packets';
import { retransmits } from '../probes/retransmits';
import { resets } from '../probes/resets';
import { drops } from '../probes/drops';
import { rtt } from '../probes/rtt';
import { detect, Detector, DetectAlert } from '../detect';
import { Guard } from '../guard';
import { createExporters, Exporters } from '../export';
import type { ProbeStatsSource } from '../export';
import { upInterfaces } from '../net/interfaces';
import type { ResolvedServeConfig } from './config';

interface Running {
  close(): void;
}

export interface Agent {
  readonly interfaces: string[];
  readonly exporters: Exporters;
  readonly detector: Detector | undefined;
  readonly guard: Guard | undefined;
  /** Probe names running, and what this kernel could not provide. */
  readonly probes: string[];
  /** Sources denied automatically so far. */
  readonly autoDenied: string[];
  /** The packet programs (packets probe or SYN counts) to attach to interfaces created later. */
  readonly packetPrograms: () => PacketProgram[];
  /** Stops everything (detaches, flushes exporters); idempotent. */
  close(): Promise<void>;
}

export async function startAgent(config: ResolvedServeConfig, log: (message: string) => void = (m) => process.stderr.write(`tcpscope serve: ${m}\n`)): Promise<Agent> {
  const interfaces = config.interfaces ?? upInterfaces();
  const running: Running[] = [];
  const pumps: Array<Promise<void>> = [];
  const autoDenied: string[] = [];
  const exporters = await createExporters(config.exporters, { log });
  const metrics = exporters.metrics;
  let guard: Guard | undefined;
  let detector: Detector | undefined;
  let guardTimer: NodeJS.Timeout | undefined;
  const names: string[] = [];
  /** Read the SYN tables one last time; called before the programs close. */
  const detachers: Array<() => void> = [];
  const packetPrograms: Array<{ program: PacketProgram; isClosed(): boolean }> = [];

  /** Reads a probe to the end into the metrics; a failing probe is reported, not fatal. */
  const pump = <E>(name: string, probe: AsyncIterable<E> & Running & ProbeStatsSource, observe: (e: E) => void): void => {
    running.push(probe);
    names.push(name);
    metrics.attachProbe(name, probe);
    pumps.push((async () => {
      for await (const e of probe) observe(e);
    })().catch((e: Error) => log(`${name} stopped: ${e.message}`)));
  };

  try {
    const p = config.probes;
    if (p.connections) pump('connections', connections({ events: ['open', 'close'] }), (e) => metrics.observeConnection(e));
    if (p.retransmits) pump('retransmits', retransmits(), (e) => metrics.observeRetransmit(e));
    if (p.resets) pump('resets', resets(), (e) => metrics.observeReset(e));
    if (p.drops) pump('drops', drops(), (e) => metrics.observeDrop(e));
    if (p.rtt) pump('rtt', rtt({ histogram: false }), (e) => metrics.observeRtt(e));
    if (p.packets) {
      // The packets program counts SYNs in the kernel too (countSyns): tcpscope_syns_total
      // comes from its tables at every scrape, without a second program per interface.
      const stream = packets({ interfaces, countSyns: true });
      packetPrograms.push({ program: stream.program, isClosed: () => stream.isClosed });
      pump('packets', stream, (e) => metrics.observePacket(e));
      detachers.push(metrics.attachSynCounts({ snapshot: () => readSynTables(stream.program) }));
    } else {
      const syns = synCounts({ interfaces });
      let synsClosed = false;
      packetPrograms.push({ program: syns.program, isClosed: () => synsClosed });
      running.push({ close: () => { synsClosed = true; syns.close(); } });
      names.push('synCounts');
      detachers.push(metrics.attachSynCounts(syns));
    }

    if (config.guard.enabled) {
      guard = Guard.start({ interfaces });
      for (const cidr of config.guard.deny) guard.deny(cidr);
      let lastDropped = 0n;
      guardTimer = setInterval(() => {
        const dropped = guard!.stats().dropped;
        if (dropped > lastDropped) metrics.observeGuardDrop('deny_list', Number(dropped - lastDropped));
        lastDropped = dropped;
      }, 1000);
    }

    if (config.detect.enabled) {
      const autoDeny = config.guard.enabled ? config.guard.autoDeny : undefined;
      const onAlert = (alert: DetectAlert): void => {
        exporters.alert(alert);
        if (!guard || !autoDeny || alert.state !== 'raised' || !autoDeny.kinds.includes(alert.kind)) return;
        for (const source of alert.evidence.sources ?? []) {
          guard.deny(source, { ttlMs: autoDeny.ttlMs });
          autoDenied.push(source);
          log(`guard: denied ${source} for ${autoDeny.ttlMs / 1000} s after ${alert.kind}`);
        }
      };
      detector = detect({ interfaces, thresholds: config.detect.thresholds, detectors: config.detect.detectors, onAlert });
      running.push(detector);
      for (const u of detector.unavailable) log(`detect: ${u.reason}`);
      // Alerts are consumed through onAlert; the iterator is drained so its queue stays empty.
      const d = detector;
      pumps.push((async () => { for await (const _ of d) { /* delivered by onAlert */ } })().catch((e: Error) => log(`detect stopped: ${e.message}`)));
    }
  } catch (e) {
    if (guardTimer) clearInterval(guardTimer);
    for (const d of detachers) d();
    for (const r of running) r.close();
    guard?.close();
    await exporters.close();
    throw e;
  }

  let closing: Promise<void> | undefined;
  return {
    interfaces,
    exporters,
    detector,
    guard,
    probes: names,
    autoDenied,
    packetPrograms: () => packetPrograms.filter((p) => !p.isClosed()).map((p) => p.program),
    close() {
      closing ??= (async () => {
        if (guardTimer) clearInterval(guardTimer);
        for (const d of detachers) d();
        for (const r of running) r.close();
        guard?.close();
        await Promise.allSettled(pumps);
        await exporters.close();
      })();
      return closing;
    },
  };
}
