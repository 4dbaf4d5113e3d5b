// SPDX-License-Identifier: MIT
// What the tracepoint-based TCP probes (connections, retransmits, rtt, resets, drops)
// share: option validation, tracepoint availability on the running kernel, the in-kernel
// port filter, address decoding and the open/attach sequence.
import fs from 'node:fs';
import path from 'node:path';
import type { BpfObject } from '../bpf/object';
import type { Link } from '../bpf/link';
import { NotSupportedError } from '../bpf/errors';
import { Btf } from '../bpf/btf/parse';
import { hasCapability, tracefsStatus } from '../bpf/sys';
import { AF_INET, AF_INET6, Cidr, cidrContains, formatAddress, parseCidr, parsePort } from '../net/addr';
import { openProbe, ProbeOptions, ProbeStream, wakeupBytesFor } from './stream';
import type { EventFields } from './stream';
import type { ReaderStats } from '../bpf/ringbuf';

/** Filters every TCP probe takes. Validated before anything is loaded or attached. */
export interface TcpFilterOptions extends ProbeOptions {
  /** Only events whose local or remote port is one of these (filtered in the kernel). */
  ports?: Array<number | string>;
  /** Only events with an address in one of these ranges (either side), e.g. '10.0.0.0/8', 'fd00::/64'. */
  cidrs?: string[];
  /** Only this address family (filtered in the kernel). */
  family?: 'ipv4' | 'ipv6';
}

/** Probes of bpf/tcpevents.bpf.c (resets, drops, retransmits, rtt). */
export interface EventCapOptions {
  /**
   * Most events per second the kernel sends; beyond it they are counted as sampled
   * (stats().sampled) instead of sent. Default: no cap.
   */
  maxEventsPerSec?: number;
}

export interface CompiledFilter {
  ports: number[];
  cidrs: Cidr[];
  family: 0 | 2 | 10;
}

const FILTER_KEYS = ['ports', 'cidrs', 'family', 'signal', 'latencyMs', 'ringBytes', 'wakeupBytes'];

/** Checks the option object's keys and the common filters; throws TypeError naming the bad one. */
export function compileFilter(options: TcpFilterOptions, probe: string, extraKeys: string[] = []): CompiledFilter {
  if (options === null || typeof options !== 'object') throw new TypeError(`${probe}(): options must be an object`);
  const known = new Set([...FILTER_KEYS, ...extraKeys]);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`${probe}(): unknown option '${key}' (known: ${[...known].join(', ')})`);
  }
  const ports = options.ports === undefined ? [] : asArray(options.ports, `${probe}(): ports`).map((p) => {
    try { return parsePort(p as number | string); } catch (e) { throw new TypeError(`${probe}(): ${(e as Error).message}`); }
  });
  if (ports.length > 256) throw new TypeError(`${probe}(): at most 256 ports, got ${ports.length}`);
  const cidrs = options.cidrs === undefined ? [] : asArray(options.cidrs, `${probe}(): cidrs`).map((c) => {
    if (typeof c !== 'string') throw new TypeError(`${probe}(): cidrs must be strings like '10.0.0.0/8', got ${String(c)}`);
    try { return parseCidr(c); } catch (e) { throw new TypeError(`${probe}(): ${(e as Error).message}`); }
  });
  let family: CompiledFilter['family'] = 0;
  if (options.family !== undefined) {
    if (options.family === 'ipv4') family = AF_INET;
    else if (options.family === 'ipv6') family = AF_INET6;
    else throw new TypeError(`${probe}(): family must be 'ipv4' or 'ipv6', got '${String(options.family)}'`);
  }
  if (options.latencyMs !== undefined && !(typeof options.latencyMs === 'number' && options.latencyMs > 0)) {
    throw new TypeError(`${probe}(): latencyMs must be a positive number`);
  }
  if (options.ringBytes !== undefined && !(Number.isInteger(options.ringBytes) && options.ringBytes >= 4096 && (options.ringBytes & (options.ringBytes - 1)) === 0)) {
    throw new TypeError(`${probe}(): ringBytes must be a power of two >= 4096`);
  }
  try {
    wakeupBytesFor(options);
  } catch (e) {
    throw new TypeError(`${probe}(): ${(e as Error).message}`);
  }
  return { ports, cidrs, family };
}

export function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`${what} must be an array`);
  return value;
}

/** Validates a pid list. */
export function compilePids(value: unknown, probe: string): Set<number> {
  if (value === undefined) return new Set();
  return new Set(asArray(value, `${probe}(): pids`).map((p) => {
    if (!Number.isInteger(p) || (p as number) <= 0) throw new TypeError(`${probe}(): bad pid '${String(p)}': expected a positive integer`);
    return p as number;
  }));
}

/** True when an event's addresses pass the CIDR filter (no CIDRs: everything passes). */
export function cidrPass(filter: CompiledFilter, family: number, a: Uint8Array, b: Uint8Array): boolean {
  if (!filter.cidrs.length) return true;
  return filter.cidrs.some((c) => cidrContains(c, a, family) || cidrContains(c, b, family));
}

/** Globals of bpf/include/port_filter.h. */
export function filterGlobals(filter: CompiledFilter): Record<string, unknown> {
  return { filter_ports: filter.ports.length ? 1 : 0, filter_family: filter.family };
}

/** Fills the `port_filter` map after load. */
export function fillPortFilter(obj: BpfObject, filter: CompiledFilter): void {
  if (!filter.ports.length) return;
  const map = obj.map<number, number>('port_filter');
  for (const port of filter.ports) map.set(port, 1);
}

/** Formats a decoded 16-byte address field. */
export function addr(bytes: Uint8Array, family: number): string {
  return formatAddress(bytes, family);
}

export function familyName(family: number): 'ipv4' | 'ipv6' {
  return family === AF_INET6 ? 'ipv6' : 'ipv4';
}

/** The endpoints every TCP event carries: addresses as text, their bytes beside them. */
export interface EventEndpoints {
  family: 'ipv4' | 'ipv6';
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** The addresses' 16 bytes (IPv4 in the first 4), as the kernel recorded them. */
  saddrBytes: Uint8Array;
  daddrBytes: Uint8Array;
}

/** A kernel event struct's endpoint fields, as the generated raw types name them. */
interface RawEndpoints { family: number; saddr: Uint8Array; sport: number; daddr: Uint8Array; dport: number }

/** EventEndpoints computed when read (lazyEvents), shared by every tracepoint-based event. */
export const ENDPOINT_FIELDS: EventFields<RawEndpoints, EventEndpoints> = {
  family: (r) => familyName(r.family),
  saddr: (r) => addr(r.saddr, r.family),
  sport: (r) => r.sport,
  daddr: (r) => addr(r.daddr, r.family),
  dport: (r) => r.dport,
  saddrBytes: (r) => r.saddr,
  daddrBytes: (r) => r.daddr,
};

/** EventEndpoints computed at once, for events built whole (one per flow, not per packet). */
export function eventEndpoints(r: RawEndpoints): EventEndpoints {
  const f = ENDPOINT_FIELDS;
  // One literal, not a loop over the keys: V8 then builds the object with one fixed shape, as
  // cheap as fields written out by hand; the loop was measurably slower per FlowEvent.
  return {
    family: f.family(r), saddr: f.saddr(r), sport: f.sport(r), daddr: f.daddr(r), dport: f.dport(r),
    saddrBytes: f.saddrBytes(r), daddrBytes: f.daddrBytes(r),
  };
}

// ---- tracepoints on the running kernel --------------------------------------------

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

function tracefsEventDir(category: string, name: string): string | undefined {
  for (const root of TRACEFS) {
    const dir = path.join(root, 'events', category, name);
    if (fs.existsSync(dir)) return dir;
  }
  return undefined;
}

function tracefsMounted(): boolean {
  return TRACEFS.some((root) => fs.existsSync(path.join(root, 'events')));
}

/**
 * Whether the running kernel has tracepoint `category/name`: from tracefs, or (when tracefs
 * is not mounted) from the kernel BTF's `trace_event_raw_*` / `btf_trace_*` types.
 */
export function tracepointAvailable(category: string, name: string): boolean {
  if (tracefsMounted()) return tracefsEventDir(category, name) !== undefined;
  try {
    return Btf.kernel().find(`btf_trace_${name}`) !== undefined;
  } catch {
    return true; // cannot tell: let the attach say
  }
}

/**
 * tp_btf twins of the tracepoint programs (bpf/include/tp_btf_twin.h): the same handler,
 * attached by BTF id instead of a tracefs id. Keyed by the tracepoint program; a function
 * picks the variant matching the number of arguments the running kernel's tracepoint has.
 */
export const BTF_TWINS: Readonly<Record<string, string | ((args: number) => string | undefined)>> = {
  conns_set_state: 'conns_set_state_btf',
  conns_recv_length: 'conns_recv_length_btf',
  conns_send_length: 'conns_send_length_btf',
  // 6.13 added the transmit error.
  tev_retransmit: (args) => (args >= 3 ? 'tev_retransmit_btf3' : 'tev_retransmit_btf'),
  tev_retransmit_synack: 'tev_retransmit_synack_btf',
  tev_rtt: 'tev_rtt_btf',
  // 6.10 added the reason argument.
  tev_send_reset: (args) => (args >= 3 ? 'tev_send_reset_btf3' : 'tev_send_reset_btf'),
  tev_receive_reset: 'tev_receive_reset_btf',
  // 5.17 added the reason, 6.11 rx_sk.
  tev_drop: (args) => (args >= 4 ? 'tev_drop_btf4' : args === 3 ? 'tev_drop_btf3' : 'tev_drop_btf2'),
  tev_bad_csum: 'tev_bad_csum_btf',
};

function twinsOf(program: string): string[] {
  const twin = Object.hasOwn(BTF_TWINS, program) ? BTF_TWINS[program] : undefined;
  if (twin === undefined) return [];
  if (typeof twin === 'string') return [twin];
  return [...new Set([2, 3, 4, 5].map((n) => twin(n)).filter((t): t is string => t !== undefined))];
}

/** The number of arguments of tracepoint `name` on the running kernel (from its BTF), or undefined. */
export function tracepointArgs(name: string): number | undefined {
  try {
    const btf = Btf.kernel();
    let t = btf.find(`btf_trace_${name}`);
    for (let hops = 0; t && t.kind !== 'func_proto' && hops < 4; hops++) t = 'type' in t && typeof t.type === 'number' ? btf.type(t.type) : undefined;
    // The first parameter is the tracepoint's private data pointer, not an argument.
    return t && t.kind === 'func_proto' ? t.params.length - 1 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How tracepoints are attached: through tracefs (tracepoint programs, checked on every
 * kernel of the matrix), or by BTF id (tp_btf twins) when this process cannot use tracefs:
 * it is root-only, and a process with CAP_BPF/CAP_PERFMON but not root can neither read nor
 * mount it. TCPSCOPE_TRACEPOINTS=btf|tracefs overrides the choice.
 */
export function tracepointAttachMode(): 'tracefs' | 'btf' {
  const forced = process.env['TCPSCOPE_TRACEPOINTS'];
  if (forced === 'btf' || forced === 'tracefs') return forced;
  const status = tracefsStatus();
  if (status.state === 'readable') return 'tracefs';
  return status.state === 'unmounted' && hasCapability('CAP_SYS_ADMIN') ? 'tracefs' : 'btf';
}

/** The field names of a tracepoint (tracefs format file); undefined when unknown. */
export function tracepointFields(category: string, name: string): Set<string> | undefined {
  const dir = tracefsEventDir(category, name);
  if (!dir) return undefined;
  try {
    const text = fs.readFileSync(path.join(dir, 'format'), 'utf8');
    const fields = new Set<string>();
    for (const m of text.matchAll(/field:[^;]*?\s\**([A-Za-z_][A-Za-z0-9_]*)(?:\[\d*\])?;/g)) fields.add(m[1]!);
    return fields;
  } catch {
    return undefined;
  }
}

/** A part of a probe the running kernel cannot provide. */
export interface Unavailable {
  /** The BPF program that was not loaded. */
  program: string;
  /** e.g. 'tcp/tcp_bad_csum' */
  tracepoint: string;
  /** What the user loses, in words. */
  reason: string;
}

/** One program of a probe and the tracepoint it needs. */
export interface ProgramNeed {
  program: string;
  /** 'category/name' */
  tracepoint?: string;
  /** What is lost without it (for Unavailable.reason). */
  provides: string;
  /** Attach to the root cgroup instead of by section name. */
  cgroup?: boolean;
  /** Failing to attach is reported as unavailable instead of failing the probe. */
  optional?: boolean;
}

/** What a TCP probe has counted. */
export interface TcpProbeStats extends ReaderStats {
  sampled: number;
}

/** A running TCP probe: events, stats(), close(), plus what this kernel could not provide. */
export type TcpProbe<Event, Extra = object> = Omit<ProbeStream<unknown, Event>, 'stats'> & Extra & {
  /** Events delivered, lost (ring full) and kept in the kernel by maxEventsPerSec (`sampled`; 0 without a cap); after close(), the final values. */
  stats(): TcpProbeStats;
  /** Tracepoints (and the events they give) missing on this kernel. */
  readonly unavailable: readonly Unavailable[];
};

export interface TcpProbeSpec<Event> {
  probe: string;
  object: string;
  ring: string;
  /** Every program of the object (those not in `programs` are not loaded). */
  allPrograms: readonly string[];
  /** Programs this probe uses. */
  programs: ProgramNeed[];
  globals: Record<string, unknown>;
  /** After load, before attach (fill maps). */
  setup?(obj: BpfObject): void;
  toEvent(raw: unknown): Event | undefined;
  /** Records as lazy views (see ProbeSpec.lazy). */
  lazy?: boolean;
}

/**
 * Opens a probe whose programs attach to tracepoints that may be missing on this kernel:
 * those are not loaded and listed in `unavailable`; when none is left, NotSupportedError.
 */
export function openTcpProbe<Event>(spec: TcpProbeSpec<Event>, options: ProbeOptions): TcpProbe<Event> {
  const unavailable: Unavailable[] = [];
  const used = new Set<string>();
  /** need.program → the program loaded for it (itself, or its tp_btf twin). */
  const chosen = new Map<string, string>();
  const mode = tracepointAttachMode();
  for (const need of spec.programs) {
    let program = need.program;
    if (need.tracepoint) {
      const [category, name] = need.tracepoint.split('/') as [string, string];
      if (!tracepointAvailable(category, name)) {
        unavailable.push({ program: need.program, tracepoint: need.tracepoint, reason: `tracepoint ${need.tracepoint} does not exist on this kernel (${kernelRelease()}): no ${need.provides}` });
        continue;
      }
      const twin = Object.hasOwn(BTF_TWINS, need.program) ? BTF_TWINS[need.program] : undefined;
      if (mode === 'btf' && twin !== undefined) {
        const variant = typeof twin === 'string' ? twin : twin(tracepointArgs(name) ?? 0);
        if (variant) program = variant;
      }
    }
    chosen.set(need.program, program);
    used.add(program);
  }
  const essential = spec.programs.filter((p) => !p.optional);
  if (!essential.some((p) => chosen.has(p.program))) {
    throw new NotSupportedError(`${spec.probe}(): this kernel (${kernelRelease()}) has none of the tracepoints it needs: ${unavailable.map((u) => u.tracepoint).join(', ')}`);
  }
  const skipPrograms = [...spec.allPrograms, ...spec.allPrograms.flatMap(twinsOf)].filter((p) => !used.has(p));
  const stream = openProbe<unknown, Event>({
    object: spec.object,
    ring: spec.ring,
    open: { skipPrograms, globals: spec.globals },
    attach(obj) {
      spec.setup?.(obj);
      const links: Link[] = [];
      for (const need of spec.programs) {
        const name = chosen.get(need.program);
        if (name === undefined) continue;
        const prog = obj.program(name);
        try {
          links.push(need.cgroup ? prog.attachCgroup() : prog.attach());
        } catch (e) {
          if (!need.optional) throw e;
          unavailable.push({ program: need.program, tracepoint: need.tracepoint ?? prog.section, reason: `${prog.section} could not be attached (${(e as Error).message.split('\n')[0]}): ${need.provides} unavailable` });
        }
      }
      return links;
    },
    toEvent: spec.toEvent,
    ...(spec.lazy ? { lazy: true } : {}),
  }, options);
  // Keep stats readable after close (the loop's end closes the probe, and the loss counter
  // lives in the object close() frees): snapshot them on the way out.
  const baseStats = stream.stats.bind(stream);
  const baseClose = stream.close.bind(stream);
  let final: TcpProbeStats | undefined;
  return Object.assign(stream, {
    unavailable: Object.freeze(unavailable),
    stats: (): TcpProbeStats => final ?? { ...baseStats(), sampled: 0 },
    close: () => {
      if (!final && !stream.isClosed) {
        try { final = { ...baseStats(), sampled: 0 }; } catch { /* object already gone */ }
      }
      baseClose();
    },
  }) as TcpProbe<Event>;
}

let release: string | undefined;
function kernelRelease(): string {
  if (release === undefined) {
    try { release = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(); } catch { release = 'unknown'; }
  }
  return `Linux ${release}`;
}

export { monoToDate } from '../util/clock';
