// SPDX-License-Identifier: MIT
// flows(): each new incoming TCP flow identified once from its first payload bytes
// (bpf/classify.bpf.c at tc ingress, parsers in ./parse). Payload bytes are captured only
// by this probe, which the caller asks for explicitly; they stay out of events unless
// includePayload is set.
import os from 'node:os';
import { BpfObject } from '../bpf/object';
import { NotSupportedError, VerifierError } from '../bpf/errors';
import type { Link } from '../bpf/link';
import type { InterfaceRef } from '../bpf/netif';
import type { RecordDecoder, RecordReader } from '../bpf/ringbuf';
import { builtObjectPath } from '../bpf/paths';
import { parsePort } from '../net/addr';
import { DEFAULT_WAKEUP_BYTES, ProbeStream } from '../probes/stream';
import type { ProbeOptions } from '../probes/stream';
import { eventEndpoints } from '../probes/tcp_common';
import type { EventEndpoints } from '../probes/tcp_common';
import { monoToDate } from '../util/clock';
import { classifyPayload } from './parse';
import type { Classification } from './parse';
import type { FlowRecord as RawFlowHeader } from '../generated/classify';

export { classifyPayload, parseClientHello, parseHttp1Request, isHttp2Preface } from './parse';
export type { Classification, FlowProtocol } from './parse';

/**
 * The object has two variants of the program (same maps): classify_tc, which claims a flow
 * with compare-and-swap (BPF_ATOMIC with BPF_FETCH, kernel 5.12+), and classify_xadd for
 * older kernels, which have only the atomic add without result. Kernels without BPF_FETCH
 * reject the first before verifying it, with this message.
 */
const PROGRAMS = ['classify_tc', 'classify_xadd'] as const;
const NO_FETCH_ATOMICS = /uses reserved fields/;
/** Set once a kernel rejected classify_tc for lack of BPF_FETCH atomics: later calls skip it. */
let xaddOnly = false;

/** Most payload bytes the kernel copies per flow (CLASSIFY_MAX in bpf/classify.bpf.c). */
export const MAX_CAPTURE_BYTES = 2048;

export interface FlowsOptions extends ProbeOptions {
  /** Interfaces whose incoming traffic is classified (tc ingress on each). */
  interfaces: InterfaceRef | InterfaceRef[];
  /** Only flows with one of these ports on either side (filtered in the kernel; at most 256). */
  ports?: Array<number | string>;
  /** Payload bytes copied from the first data segment, 1..2048. Default 1024. */
  captureBytes?: number;
  /** Add the captured bytes to each event (`payload`). Default false. */
  includePayload?: boolean;
  /** tc attachment: tcx (kernel 6.6+) or clsact; default auto. */
  mechanism?: 'auto' | 'tcx' | 'clsact';
}

/** One new flow; its source (`saddr`, `sport`) is the sending side, the client. */
export interface FlowEvent extends Classification, EventEndpoints {
  /** When the first data segment arrived. */
  time: Date;
  /** bpf_ktime_get_ns() of that segment (CLOCK_MONOTONIC). */
  tsNs: bigint;
  /** From the SYN to the first data segment, ns. */
  firstDataDelayNs: number;
  ifindex: number;
  /** Payload bytes of the segment, and how many were captured. */
  payloadLen: number;
  capturedLen: number;
  /** With includePayload only. */
  payload?: Uint8Array;
}

/** struct flow_record, then the payload that follows it in the ring. */
interface RawFlow extends RawFlowHeader { payload: Uint8Array }

export interface ClassifyKernelStats {
  /** TCP segments parsed (after the port filter). */
  tcp: bigint;
  /** Flows entered as pending (SYNs). */
  syns: bigint;
  /** First data segments copied out: one per flow. */
  sampled: bigint;
  /** Data segments of flows whose SYN was not seen. */
  notTracked: bigint;
  /** Data of a pending flow not at the start of its stream (reordering, loss). */
  outOfOrder: bigint;
  captureErrors: bigint;
}

/** The flows probe: events, stats() of the ring, kernelStats() of the program. */
export class FlowStream extends ProbeStream<unknown, FlowEvent> {
  /** The loaded program's name: classify_tc, or classify_xadd on kernels before 5.12. */
  readonly program: string;

  /** @internal use flows() */
  constructor(program: string, object: BpfObject, links: Link[], reader: RecordReader<RawFlow>, toEvent: (raw: RawFlow) => FlowEvent) {
    // The base is typed over `unknown` records so that the public type names no kernel
    // struct; this reader yields RawFlow only, which is what toEvent takes.
    super(object, links, reader, toEvent as (raw: unknown) => FlowEvent);
    this.program = program;
  }

  /** Counters of the kernel program, summed over CPUs. */
  kernelStats(): ClassifyKernelStats {
    const perCpu = this.object.perCpuMap<number, Record<string, bigint>>('classify_stats').get(0) ?? [];
    const sum = (f: string): bigint => perCpu.reduce((a, s) => a + (s[f] ?? 0n), 0n);
    return {
      tcp: sum('tcp'), syns: sum('syns'), sampled: sum('sampled'), notTracked: sum('not_tracked'),
      outOfOrder: sum('out_of_order'), captureErrors: sum('capture_errors'),
    };
  }
}

function toEvent(raw: RawFlow, includePayload: boolean): FlowEvent {
  const c = classifyPayload(raw.payload);
  const event: FlowEvent = {
    time: monoToDate(raw.ts_ns),
    tsNs: raw.ts_ns,
    firstDataDelayNs: Number(raw.ts_ns - raw.syn_ns),
    ...eventEndpoints(raw),
    ifindex: raw.ifindex,
    protocol: c.protocol,
    payloadLen: raw.payload_len,
    capturedLen: raw.cap_len,
  };
  for (const k of ['method', 'path', 'host', 'httpVersion', 'sni', 'tlsVersion', 'alpn', 'truncated', 'malformed'] as const) {
    if (c[k] !== undefined) (event as unknown as Record<string, unknown>)[k] = c[k];
  }
  if (includePayload) event.payload = raw.payload;
  return event;
}

/**
 * Classifies each new incoming TCP flow once, from the first payload bytes of its client:
 * HTTP/1.x (method, path, Host), HTTP/2 (preface), TLS (SNI, ALPN, version) or unknown.
 * Flows are those whose SYN arrives on `interfaces` after the probe starts.
 *
 * @example
 * await using flows = flows({ interfaces: ['eth0'], ports: [80, 443] });
 * for await (const f of flows) console.log(f.saddr, f.protocol, f.sni ?? f.host);
 */
export function flows(options: FlowsOptions): FlowStream {
  const interfaces = Array.isArray(options.interfaces) ? options.interfaces : [options.interfaces];
  if (interfaces.length === 0) throw new TypeError('flows(): at least one interface is needed');
  const captureBytes = options.captureBytes ?? 1024;
  if (!Number.isInteger(captureBytes) || captureBytes < 1 || captureBytes > MAX_CAPTURE_BYTES) {
    throw new TypeError(`flows(): captureBytes must be an integer 1..${MAX_CAPTURE_BYTES}, got ${String(captureBytes)}`);
  }
  const ports = (options.ports ?? []).map((p) => parsePort(p));
  if (ports.length > 256) throw new TypeError(`flows(): at most 256 ports, got ${ports.length}`);
  const includePayload = options.includePayload ?? false;

  for (const name of xaddOnly ? PROGRAMS.slice(1) : PROGRAMS) {
    const obj = BpfObject.open(builtObjectPath('classify'), {
      globals: { tcpscope_wakeup_bytes: DEFAULT_WAKEUP_BYTES, capture_bytes: captureBytes, filter_ports: ports.length ? 1 : 0 },
      skipPrograms: PROGRAMS.filter((p) => p !== name),
    });
    try {
      if (options.ringBytes !== undefined) obj.setMaxEntries('flow_records', options.ringBytes);
      obj.load();
    } catch (e) {
      obj.close();
      if (name === 'classify_tc' && e instanceof VerifierError && NO_FETCH_ATOMICS.test(e.verifierLog)) {
        xaddOnly = true; // kernel before 5.12: take the other variant
        continue;
      }
      if (name === 'classify_xadd' && e instanceof VerifierError) {
        throw new NotSupportedError(
          `flows(): kernel ${os.release()} rejected the flow classifier (the variant for kernels without BPF_FETCH atomics, ` +
            `before 5.12); it needs tc BPF, LRU hash maps and atomic adds (Linux 5.10 or later): ${e.message}`,
          { errno: e.errno, code: e.code, libbpfLog: e.libbpfLog, cause: e },
        );
      }
      throw e;
    }
    return attachFlows(obj, name, interfaces, ports, includePayload, options);
  }
  throw new Error('flows(): no program variant to load'); // not reached: the last variant returns or throws
}

function attachFlows(obj: BpfObject, name: string, interfaces: InterfaceRef[], ports: number[], includePayload: boolean, options: FlowsOptions): FlowStream {
  try {
    const portMap = obj.map<number, number>('port_filter');
    for (const p of ports) portMap.set(p, 1);
    const prog = obj.program(name);
    const links: Link[] = interfaces.map((iface) => prog.attachTc(iface, { direction: 'ingress', mechanism: options.mechanism ?? 'auto' }));
    const header = obj.decoder<RawFlowHeader>('flow_record');
    const decoder: RecordDecoder<RawFlow> = {
      decode(view, offset) {
        const h = header.decode(view, offset) as RawFlow;
        const start = view.byteOffset + offset + header.size;
        h.payload = new Uint8Array(view.buffer.slice(start, start + Math.min(h.cap_len, MAX_CAPTURE_BYTES)));
        return h;
      },
    };
    const readerOptions: { wakeupMs: number; signal?: AbortSignal; decoder: RecordDecoder<RawFlow> } = { wakeupMs: options.latencyMs ?? 10, decoder };
    if (options.signal) readerOptions.signal = options.signal;
    const reader = obj.ringBuffer<RawFlow>('flow_records', readerOptions);
    return new FlowStream(name, obj, links, reader, (raw) => toEvent(raw, includePayload));
  } catch (e) {
    obj.close();
    throw e;
  }
}
