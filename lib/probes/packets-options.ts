// SPDX-License-Identifier: MIT
// The packets probe's options: their types and the one validation every way of opening
// the packet program goes through, before anything is opened or attached.
import fs from 'node:fs';
import type { XdpMode } from '../bpf/program';
import { InterfaceRef, interfaceIndex, interfaceName } from '../bpf/netif';
import { compileFilter, CompiledFilter, PacketFilter } from '../filter/compile';
import type { ProbeOptions } from './stream';

export type PacketHook = 'tc' | 'xdp';

export interface PacketsOptions extends ProbeOptions {
  /** Interfaces to watch (names or indexes). At least one. */
  interfaces: InterfaceRef[];
  /** tc ingress (default) or XDP. */
  hook?: PacketHook;
  /** XDP attach mode (default auto: native where the driver has it). */
  xdpMode?: XdpMode;
  /** A tcpdump-like expression or a structured filter, applied in the kernel. */
  filter?: PacketFilter;
  /**
   * Copy the first N bytes of each frame (link header included), as for pcap; 0: none.
   * At XDP this needs Linux 5.18 (bpf_xdp_load_bytes): on older kernels XDP records come
   * without captured bytes (the tc hook captures on every kernel).
   */
  snaplen?: number;
  /** Copy the first N bytes of TCP payload (when snaplen is 0); 0 (default): none. Same XDP limit as snaplen. */
  payloadBytes?: number;
  /** Deliver 1 in N matching packets (default 1: all). */
  sampleRate?: number;
  /** Also count SYNs in the kernel (see synSnapshot / synCounts()). */
  countSyns?: boolean;
  /**
   * Most records per second the kernel sends; matching packets beyond it are counted as
   * sampled (stats().sampled) instead of sent. Default: no cap.
   */
  maxEventsPerSec?: number;
  /**
   * With countSyns: give a source (a /24 or /64 prefix) its own SYN counter only once a
   * count-min sketch has seen this many of its SYNs within one epoch (about 268 ms), so a
   * random-source flood does not fill the tables with one-SYN entries. 0 (default): every
   * source is counted.
   */
  synAdmission?: number;
  /** Also count SYN-ACKs and closed-port RSTs sent, at tc egress (counters().synacksOut, rstsOut). */
  egressCounters?: boolean;
}

export const MAX_CAPTURE = 65536;

export interface NormalizedOptions {
  ifindexes: number[];
  ifnames: string[];
  hook: PacketHook;
  xdpMode: XdpMode;
  filter: CompiledFilter;
  snaplen: number;
  payloadBytes: number;
  sampleRate: number;
  eventsPerSlot: number;
  synAdmission: number;
  egressCounters: boolean;
}

/** Events per second into the kernel's budget per 100 ms slot (bpf/include/rate_cap.h); 0: no cap. */
export function eventsPerSlot(rate: number | undefined): number {
  if (rate === undefined) return 0;
  if (typeof rate !== 'number' || !(rate >= 10) || !Number.isFinite(rate)) throw new TypeError(`maxEventsPerSec must be a number >= 10, got ${JSON.stringify(rate)}`);
  return Math.min(0xffffffff, Math.ceil(rate / 10));
}

export function intOption(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Ethernet-framed link types the parser handles: ARPHRD_ETHER and ARPHRD_LOOPBACK. */
function checkLinkType(name: string): void {
  let type: number;
  try {
    type = Number(fs.readFileSync(`/sys/class/net/${name}/type`, 'utf8').trim());
  } catch {
    return; // not visible in sysfs (other namespace): let attach decide
  }
  if (type !== 1 && type !== 772) {
    throw new TypeError(`interface '${name}' has link type ${type}, not Ethernet or loopback: tcpscope packets parses Ethernet frames only`);
  }
}

/** Validates everything before the object is opened, so bad options attach nothing. */
export function normalize(options: Partial<PacketsOptions> & Pick<PacketsOptions, 'interfaces'>, what = 'packets'): NormalizedOptions {
  if (!options || typeof options !== 'object') throw new TypeError(`${what}(): options are required ({ interfaces: ['lo'] })`);
  const list = options.interfaces;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${what}(): interfaces must name at least one interface, e.g. { interfaces: ['lo'] }`);
  const ifindexes: number[] = [];
  const ifnames: string[] = [];
  for (const ref of list) {
    const index = interfaceIndex(ref);
    if (ifindexes.includes(index)) continue;
    const name = interfaceName(index) ?? String(ref);
    checkLinkType(name);
    ifindexes.push(index);
    ifnames.push(name);
  }
  const hook = options.hook ?? 'tc';
  if (hook !== 'tc' && hook !== 'xdp') throw new TypeError(`hook must be 'tc' or 'xdp', got '${String(hook)}'`);
  const xdpMode = options.xdpMode ?? 'auto';
  if (!['auto', 'skb', 'native', 'hw'].includes(xdpMode)) throw new TypeError(`xdpMode must be auto, skb, native or hw, got '${xdpMode}'`);
  return {
    ifindexes,
    ifnames,
    hook,
    xdpMode,
    filter: compileFilter(options.filter),
    snaplen: intOption('snaplen', options.snaplen, 0, 262144, 0),
    payloadBytes: intOption('payloadBytes', options.payloadBytes, 0, MAX_CAPTURE, 0),
    sampleRate: intOption('sampleRate', options.sampleRate, 1, 0x7fffffff, 1),
    eventsPerSlot: eventsPerSlot(options.maxEventsPerSec),
    synAdmission: intOption('synAdmission', options.synAdmission, 0, 0xffffffff, 0),
    egressCounters: options.egressCounters ?? false,
  };
}

