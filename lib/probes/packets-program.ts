// SPDX-License-Identifier: MIT
// The loaded packet program (bpf/packets.bpf.c) and its maps: configuration changed while
// it runs, the filter's two slots, counters. Shared by packets() and synCounts().
import { BpfObject } from '../bpf/object';
import { InterfaceLinks, Link } from '../bpf/link';
import type { BpfMap } from '../bpf/map';
import type { XdpMode } from '../bpf/program';
import { builtObjectPath } from '../bpf/paths';
import { compileFilter, CompiledFilter, FILTER_MAX_INSNS, PacketFilter } from '../filter/compile';
import type { LinkFollower } from '../net/link-watch';
import { DEFAULT_WAKEUP_BYTES } from './stream';
import { MAX_CAPTURE, NormalizedOptions, PacketHook, PacketsOptions, eventsPerSlot, intOption, normalize } from './packets-options';

/** Kernel counters of the packet program, summed over CPUs. */
export interface PacketCounters {
  /** TCP segments parsed. */
  tcp: number;
  /** Passed the filter. */
  matched: number;
  /** Matched but skipped by sampling. */
  sampledOut: number;
  /** Records written to the ring. */
  emitted: number;
  syns: number;
  /** SYN-ACKs sent (with egressCounters). */
  synacksOut: number;
  /** RSTs sent answering a segment no socket took (with egressCounters). */
  rstsOut: number;
}

interface ConfigValue {
  features: number;
  sample_rate: number;
  snaplen: number;
  payload_bytes: number;
  filter_slot: number;
  events_per_slot: number;
  hh_min: number;
  _pad: number;
}

export const FEATURE_EVENTS = 1;
export const FEATURE_SYNS = 2;
/** Packets and bytes per interface and flag class, in the kernel (interfaceCounts()). */
export const FEATURE_IF_COUNTS = 4;
/** With FEATURE_SYNS: per destination port only (no per-source tables). */
export const FEATURE_SYN_PORTS_ONLY = 8;

/** Flag classes of packets_by_if's counters, in the kernel's order (bpf/packets.bpf.c FLAG_CLASS_*). */
export const IF_COUNT_CLASSES = ['syn', 'synack', 'rst', 'fin', 'ack', 'none'] as const;

/** One interface's packets by flag class and bytes since attach (FEATURE_IF_COUNTS). */
export interface InterfaceCounts {
  ifindex: number;
  ifname: string;
  packets: Record<typeof IF_COUNT_CLASSES[number], number>;
  bytes: number;
}

interface IfCountsValue { packets: bigint[]; bytes: bigint }
function encodeFilter(filter: CompiledFilter): { len: number; insns: unknown[] } {
  if (filter.insns.length > FILTER_MAX_INSNS) throw new Error('internal: filter too long');
  return { len: filter.insns.length, insns: filter.insns };
}

/** Attaches the packet program (and the egress counter with `egress`) to one interface; nothing stays attached on failure. */
function attachTo(obj: BpfObject, hook: PacketHook, xdpMode: XdpMode, egress: boolean, ifindex: number): Link[] {
  const prog = obj.program(hook === 'tc' ? 'packets_tc' : 'packets_xdp');
  const links = [hook === 'tc' ? prog.attachTc(ifindex) : prog.attachXdp(ifindex, { mode: xdpMode })];
  if (egress) {
    try {
      links.push(obj.program('packets_tc_egress').attachTc(ifindex, { direction: 'egress' }));
    } catch (e) {
      links[0]!.detach();
      throw e;
    }
  }
  return links;
}

/**
 * The loaded packet program with its maps: configuration that can change while it runs,
 * counters, SYN tables. Shared by packets() and synCounts().
 */
export class PacketProgram implements LinkFollower {
  readonly object: BpfObject;
  readonly links: Link[];
  readonly hook: PacketHook;
  /** Interface names by ifindex. */
  readonly interfaces: ReadonlyMap<number, string>;
  /** The links made on each interface (ingress, and egress with egressCounters). */
  private readonly attached: InterfaceLinks<string>;
  private readonly egressCounters: boolean;
  private readonly xdpMode: XdpMode;
  private config: ConfigValue;
  private filterText: string;
  private readonly configMap: BpfMap<number, ConfigValue>;
  private readonly filterMap: BpfMap<number, unknown>;
  private ifCounts: boolean;

  /** @internal */
  constructor(object: BpfObject, attached: InterfaceLinks<string>, opts: NormalizedOptions, config: ConfigValue) {
    this.object = object;
    this.attached = attached;
    this.links = attached.links;
    this.egressCounters = opts.egressCounters;
    this.hook = opts.hook;
    this.interfaces = attached.names;
    this.xdpMode = opts.xdpMode;
    this.config = config;
    this.filterText = opts.filter.text;
    this.configMap = object.map<number, ConfigValue>('packets_config');
    this.filterMap = object.map<number, unknown>('packets_filter');
    this.ifCounts = (config.features & FEATURE_IF_COUNTS) !== 0;
  }

  /** @internal opens, configures, attaches; nothing stays attached on failure. */
  static open(opts: NormalizedOptions, features: number, ringBytes?: number, wakeupBytes = DEFAULT_WAKEUP_BYTES): PacketProgram {
    const obj = BpfObject.open(builtObjectPath('packets'), {
      globals: { tcpscope_wakeup_bytes: wakeupBytes },
      skipPrograms: [opts.hook === 'tc' ? 'packets_xdp' : 'packets_tc', ...(opts.egressCounters ? [] : ['packets_tc_egress'])],
    });
    try {
      if (ringBytes !== undefined) obj.setMaxEntries('packets', ringBytes);
      else if (!(features & FEATURE_EVENTS)) obj.setMaxEntries('packets', 4096);
      // The sketches take 1 MiB each: only when sources are admitted through them.
      if (!(features & FEATURE_SYNS) || opts.synAdmission === 0 || features & FEATURE_SYN_PORTS_ONLY) {
        obj.setMaxEntries('syn_sketch_addr', 1);
        obj.setMaxEntries('syn_sketch_prefix', 1);
      }
      obj.load();
      const config: ConfigValue = {
        features,
        sample_rate: opts.sampleRate,
        snaplen: Math.min(opts.snaplen, MAX_CAPTURE),
        payload_bytes: opts.payloadBytes,
        filter_slot: 0,
        events_per_slot: opts.eventsPerSlot,
        hh_min: opts.synAdmission,
        _pad: 0,
      };
      obj.map('packets_filter').set(0, encodeFilter(opts.filter));
      obj.map('packets_config').set(0, config);
      const attached = new InterfaceLinks<string>();
      opts.ifindexes.forEach((ifindex, i) => {
        if (features & FEATURE_IF_COUNTS) createIfCounts(obj, ifindex);
        attached.add(ifindex, opts.ifnames[i]!, attachTo(obj, opts.hook, opts.xdpMode, opts.egressCounters, ifindex));
      });
      return new PacketProgram(obj, attached, opts, config);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /**
   * Attaches to one more interface while running (one created after the start, for
   * `-i any`); its packets join the same ring. Does nothing for one already attached.
   */
  addInterface(ifindex: number, name: string): boolean {
    if (this.attached.has(ifindex)) return false;
    if (this.ifCounts) createIfCounts(this.object, ifindex);
    return this.attached.add(ifindex, name, attachTo(this.object, this.hook, this.xdpMode, this.egressCounters, ifindex));
  }

  /**
   * Lets go of an interface that disappeared (the kernel detached the program with it):
   * its links are released and its name forgotten. False when it was not attached.
   */
  removeInterface(ifindex: number): boolean {
    if (this.attached.remove(ifindex) === undefined) return false;
    // Its counts go with it (an ifindex can be given to a new interface later).
    if (this.ifCounts) this.object.perCpuMap<number, IfCountsValue>('packets_by_if').delete(ifindex);
    return true;
  }

  /** The filter now applied (its expression text). */
  get filter(): string {
    return this.filterText;
  }

  /**
   * Replaces the kernel filter while attached: the new program goes to the idle slot,
   * then one config write switches to it. Throws (changing nothing) when it does not compile.
   */
  setFilter(filter: PacketFilter | undefined): void {
    const compiled = compileFilter(filter);
    const slot = this.config.filter_slot ^ 1;
    this.filterMap.set(slot, encodeFilter(compiled));
    this.writeConfig({ filter_slot: slot });
    this.filterText = compiled.text;
  }

  /** Changes sampling (1 in N) while attached. */
  setSampleRate(rate: number): void {
    this.writeConfig({ sample_rate: intOption('sampleRate', rate, 1, 0x7fffffff, 1) });
  }

  /** Changes the kernel's cap on records per second while attached (undefined: no cap). */
  setMaxEventsPerSec(rate: number | undefined): void {
    this.writeConfig({ events_per_slot: eventsPerSlot(rate) });
  }

  /** Changes the SYN sketch's admission threshold while attached (see PacketsOptions.synAdmission; needs the sketch, i.e. a non-zero synAdmission at open). */
  setSynAdmission(min: number): void {
    this.writeConfig({ hh_min: intOption('synAdmission', min, this.config.hh_min === 0 ? 0 : 1, 0xffffffff, 0) });
  }

  /** Changes what bytes are captured while attached. */
  setCapture(capture: { snaplen?: number; payloadBytes?: number }): void {
    const snaplen = intOption('snaplen', capture.snaplen, 0, 262144, this.config.snaplen);
    const payload = intOption('payloadBytes', capture.payloadBytes, 0, MAX_CAPTURE, this.config.payload_bytes);
    this.writeConfig({ snaplen: Math.min(snaplen, MAX_CAPTURE), payload_bytes: payload });
  }

  get snaplen(): number {
    return this.config.snaplen;
  }

  private writeConfig(change: Partial<ConfigValue>): void {
    const next = { ...this.config, ...change };
    this.configMap.set(0, next);
    this.config = next;
  }

  /** Kernel counters summed over CPUs. */
  counters(): PacketCounters {
    const perCpu = this.object.perCpuMap<number, Record<string, bigint>>('packets_stats').get(0) ?? [];
    const sum = (k: string): number => perCpu.reduce((n, v) => n + Number(v[k] ?? 0n), 0);
    return {
      tcp: sum('tcp'), matched: sum('matched'), sampledOut: sum('sampled_out'), emitted: sum('emitted'), syns: sum('syns'),
      synacksOut: sum('synacks_out'), rstsOut: sum('rsts_out'),
    };
  }

  /**
   * Starts counting packets and bytes per interface and flag class (FEATURE_IF_COUNTS) in a
   * running program, e.g. the detector's, so that serve's metrics need no program of their
   * own. Every TCP packet counts, whatever the filter. Counts start now.
   */
  enableInterfaceCounts(): void {
    if (this.ifCounts) return;
    for (const ifindex of this.attached.names.keys()) createIfCounts(this.object, ifindex);
    this.ifCounts = true;
    this.writeConfig({ features: this.config.features | FEATURE_IF_COUNTS });
  }

  /**
   * Packets and bytes per attached interface and flag class since it was attached, summed
   * over CPUs (FEATURE_IF_COUNTS; empty without it).
   */
  interfaceCounts(): InterfaceCounts[] {
    if (!this.ifCounts) return [];
    const map = this.object.perCpuMap<number, IfCountsValue>('packets_by_if');
    const out: InterfaceCounts[] = [];
    for (const [ifindex, perCpu] of map.entries()) {
      const ifname = this.attached.names.get(ifindex);
      if (ifname === undefined) continue;
      const packets = Object.fromEntries(IF_COUNT_CLASSES.map((c, i) => [c, perCpu.reduce((n, v) => n + Number(v.packets[i] ?? 0n), 0)])) as InterfaceCounts['packets'];
      out.push({ ifindex, ifname, packets, bytes: perCpu.reduce((n, v) => n + Number(v.bytes), 0) });
    }
    return out;
  }

  close(): void {
    this.object.close();
  }
}

/** Creates an interface's zeroed counters before its attachment, so the packet path only looks them up. */
function createIfCounts(obj: BpfObject, ifindex: number): void {
  obj.perCpuMap<number, IfCountsValue>('packets_by_if').set(ifindex, { packets: IF_COUNT_CLASSES.map(() => 0n), bytes: 0n });
}

/**
 * @internal serve's counters, no events: SYNs per destination port (tcpscope_syns_total) and,
 * with `perInterface`, packets and bytes per interface and flag class (tcpscope_packets_total).
 * Nothing per source and nothing per packet leaves the kernel: under a random-source flood
 * those are what cost (see bench/README, "What watching a flood costs").
 */
export function openPacketCounters(interfaces: PacketsOptions['interfaces'], perInterface: boolean, what = 'serve'): PacketProgram {
  return PacketProgram.open(normalize({ interfaces }, what), FEATURE_SYNS | FEATURE_SYN_PORTS_ONLY | (perInterface ? FEATURE_IF_COUNTS : 0));
}

/** @internal for synCounts() */
export function openPacketProgram(options: Omit<PacketsOptions, 'snaplen' | 'payloadBytes' | 'sampleRate'>, what: string): PacketProgram {
  return PacketProgram.open(normalize(options, what), FEATURE_SYNS);
}
