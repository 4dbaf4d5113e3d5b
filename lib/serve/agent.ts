// SPDX-License-Identifier: MIT
// `tcpscope serve`: probes feeding the metrics, detectors raising alerts, an optional guard
// acting on them, and the exporters, run together until stopped.
import { connections } from '../probes/connections';
import { openPacketCounters } from '../probes/packets';
import { readSynTables } from '../probes/syn-counts';
import type { PacketProgram } from '../probes/packets';
import { retransmits } from '../probes/retransmits';
import { resets } from '../probes/resets';
import { drops } from '../probes/drops';
import { rtt } from '../probes/rtt';
import { detect, detectDelivery, Detector, DetectAlert } from '../detect';
import { Guard, GuardSafetyError } from '../guard';
import { SafetyIndex, protectedAddresses } from '../guard/safety';
import { formatAddress, parseCidr } from '../net/addr';
import { ConfigError } from '../export/config';
import { Mitigation } from './mitigate';
import { createExporters, Exporters } from '../export';
import type { ProbeStatsSource } from '../export';
import { consumeBounded } from '../util/bounded';
import { upInterfaces } from '../net/interfaces';
import type { LinkFollower } from '../net/link-watch';
import type { ResolvedServeConfig } from './config';

interface Running {
  close(): void;
}

export interface Agent {
  readonly interfaces: string[];
  readonly exporters: Exporters;
  readonly detector: Detector | undefined;
  readonly guard: Guard | undefined;
  /** The guard's reactions to alerts (auto-deny, port protection), when the guard is on. */
  readonly mitigation: Mitigation | undefined;
  /** Probe names running, and what this kernel could not provide. */
  readonly probes: string[];
  /** Sources denied automatically so far. */
  readonly autoDenied: string[];
  /**
   * What attaches to interfaces created later and lets go of removed ones, by name: the
   * packet program (packets probe or SYN counts), the detector, the guard (those running).
   */
  readonly linkFollowers: () => Record<string, LinkFollower>;
  /** Stops everything (detaches, flushes exporters); idempotent. */
  close(): Promise<void>;
}

/** A guard safety refusal of a configured deny, as the config error it is: one line naming the key and the override. */
function configDenyError(e: GuardSafetyError): ConfigError {
  return new ConfigError(`config.guard.deny: ${e.message.replace('--force, or force: true', '"force": true in config.guard')}`);
}

/**
 * Refuses a configured deny that the guard's safety rules refuse (every address, an
 * established peer, a default gateway) unless config.guard.force: checked before anything
 * is opened or attached, so such a config fails as a config error and nothing runs.
 */
function checkConfiguredDenies(config: ResolvedServeConfig): void {
  if (!config.guard.enabled || config.guard.force || config.guard.deny.length === 0) return;
  const index = new SafetyIndex(protectedAddresses());
  for (const cidr of config.guard.deny) {
    const c = parseCidr(cidr);
    const problem = index.problem(c);
    if (problem) throw configDenyError(new GuardSafetyError(`${formatAddress(c.addr, c.family)}/${c.prefixLen}`, problem));
  }
}

export async function startAgent(config: ResolvedServeConfig, log: (message: string) => void = (m) => process.stderr.write(`tcpscope serve: ${m}\n`)): Promise<Agent> {
  checkConfiguredDenies(config);
  const interfaces = config.interfaces ?? upInterfaces();
  const running: Running[] = [];
  const pumps: Array<Promise<void>> = [];
  const exporters = await createExporters(config.exporters, { log });
  const metrics = exporters.metrics;
  let guard: Guard | undefined;
  let mitigation: Mitigation | undefined;
  let detector: Detector | undefined;
  let guardTimer: NodeJS.Timeout | undefined;
  const names: string[] = [];
  /** Read the SYN tables one last time; called before the programs close. */
  const detachers: Array<() => void> = [];
  const packetPrograms: Array<{ name: string; program: PacketProgram; isClosed(): boolean }> = [];

  /** Reads a probe to the end into the metrics; a failing probe is reported, not fatal. */
  // Bounded work per turn (lib/util/bounded.ts): scrapes, sinks and the detector's ticks
  // run however fast a probe's events come.
  const pump = <E>(name: string, probe: { batches(): AsyncIterable<E[]> } & Running & ProbeStatsSource, observe: (e: E) => void): void => {
    running.push(probe);
    names.push(name);
    metrics.attachProbe(name, probe);
    pumps.push(consumeBounded(probe.batches(), observe).catch((e: Error) => log(`${name} stopped: ${e.message}`)));
  };

  try {
    const p = config.probes;
    if (p.connections) pump('connections', connections({ events: ['open', 'close'] }), (e) => metrics.observeConnection(e));
    if (p.retransmits) pump('retransmits', retransmits(), (e) => metrics.observeRetransmit(e));
    if (p.resets) pump('resets', resets(), (e) => metrics.observeReset(e));
    if (p.drops) {
      // Counted per reason in the kernel (a flood's drops come one per packet); bad-checksum
      // events still arrive as events.
      const d = drops({ countOnly: true });
      pump('drops', d, (e) => metrics.observeDrop(e));
      detachers.push(metrics.attachDropCounts(d));
    }
    if (p.rtt) pump('rtt', rtt({ histogram: false }), (e) => metrics.observeRtt(e));
    if (interfaces.length === 0) {
      // Nothing to attach a packet program to (config.interfaces is empty, or no interface
      // is up): the probes and detectors that need none still run.
      log(`no interfaces${config.interfaces ? ' (config.interfaces is empty)' : ' up'}: ${p.packets ? 'the packets probe and ' : ''}SYN counts (tcpscope_syns_total) skipped`);
    }

    if (config.guard.enabled) {
      guard = Guard.start({ interfaces });
      for (const cidr of config.guard.deny) {
        try {
          guard.deny(cidr, { force: config.guard.force });
        } catch (e) {
          // Checked before anything was attached (checkConfiguredDenies); the tables may have
          // changed since, so the guard's own check still counts.
          if (e instanceof GuardSafetyError) throw configDenyError(e);
          throw e;
        }
      }
      const m = new Mitigation(guard, config.guard, log, metrics);
      mitigation = m;
      log(`guard: allowing ${m.allow.length} ranges (guard.allow), never denied automatically${guard.synCookies ? '' : `; SYN floods: over-budget SYNs dropped, not answered (${guard.synCookiesUnavailable})`}`);
      guardTimer = setInterval(() => m.tick(), 1000);
    }

    if (config.detect.enabled) {
      const onAlert = (alert: DetectAlert): void => {
        exporters.alert(alert);
        try {
          mitigation?.onAlert(alert);
        } catch (e) {
          log(`guard: could not act on ${alert.kind}: ${(e as Error).message}`);
        }
      };
      detector = detect({ interfaces, thresholds: config.detect.thresholds, detectors: config.detect.detectors, onAlert });
      running.push(detector);
      const det = detector;
      metrics.attachProbe('detect', { stats: () => detectDelivery(det.stats()) });
      for (const u of detector.unavailable) log(`detect: ${u.reason}`);
      // Alerts are consumed through onAlert; the iterator is drained so its queue stays empty.
      const d = detector;
      pumps.push((async () => { for await (const _ of d) { /* delivered by onAlert */ } })().catch((e: Error) => log(`detect stopped: ${e.message}`)));
    }
    if (interfaces.length > 0) {
      // Counters in the kernel, no events: SYNs per port (tcpscope_syns_total) and, with the
      // packets probe, packets and bytes per interface and flag class (tcpscope_packets_total)
      // read at every scrape. Under a flood an event per packet and a table row per source
      // were most of what watching cost the server (bench/README, "What watching a flood
      // costs"). The detector's packet program counts them when it runs (one program per
      // interface, not two; it follows interfaces itself); else a program of serve's own.
      const shared = detector?.packetProgram;
      let program: PacketProgram;
      if (shared) {
        program = shared;
        if (p.packets) shared.enableInterfaceCounts();
      } else {
        const own = openPacketCounters(interfaces, p.packets);
        program = own;
        let closed = false;
        packetPrograms.push({ name: p.packets ? 'packets' : 'synCounts', program: own, isClosed: () => closed });
        running.push({ close: () => { closed = true; own.close(); } });
      }
      names.push(p.packets ? 'packets' : 'synCounts');
      detachers.push(metrics.attachSynCounts({ snapshot: () => readSynTables(program) }));
      if (p.packets) detachers.push(metrics.attachPacketCounts(program));
    }
  } catch (e) {
    if (guardTimer) clearInterval(guardTimer);
    mitigation?.close();
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
    mitigation,
    probes: names,
    get autoDenied() { return mitigation?.autoDenied ?? []; },
    linkFollowers: () => {
      const out: Record<string, LinkFollower> = {};
      for (const p of packetPrograms) if (!p.isClosed()) out[p.name] = p.program;
      if (detector) out['detect'] = detector;
      if (guard && !guard.isClosed) out['guard'] = guard;
      return out;
    },
    close() {
      closing ??= (async () => {
        if (guardTimer) clearInterval(guardTimer);
        mitigation?.close();
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
