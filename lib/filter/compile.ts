// SPDX-License-Identifier: MIT
// Compiles a filter (tcpdump-like expression or structured spec) into the kernel's jump
// program (struct filter_prog in bpf/packets.bpf.c).
//
// Why a jump program and not DNF: every test carries a "matched" and a "not matched"
// target, as in classic BPF. `a and b` jumps from a's true exit to b, `a or b` from a's
// false exit to b, and `not` just swaps the two targets, so the program grows linearly
// with the expression (DNF grows as the product of the or-groups, and needs negated
// literals for `not`). Jumps only go forward, so the kernel's interpreter is a bounded
// loop of at most FILTER_MAX_INSNS steps over one map value fetched with one lookup.
import { AF_INET, AF_INET6, parseCidr, parsePort } from '../net/addr';
import { Direction, FIELD_FRAME_LEN, FLAG_BITS, FilterError, FilterNode, parseFilter } from './parse';
import type { TcpFlagName } from '../bpf/packet';

export const FILTER_MAX_INSNS = 32;
export const FILTER_ACCEPT = 254;
export const FILTER_REJECT = 255;

export const FilterOp = {
  SRC_NET: 1,
  DST_NET: 2,
  SPORT: 3,
  DPORT: 4,
  FLAGS_ANY: 5,
  FLAGS_EQ: 6,
  FAMILY: 7,
  TRUE: 8,
  FIELD_EQ: 9,
  FIELD_GT: 10,
} as const;

/** One test of the kernel program, as the BTF encoder of struct filter_insn takes it. */
export interface FilterInsn {
  op: number;
  jt: number;
  jf: number;
  family: number;
  lo: number;
  hi: number;
  /** Network-order address and mask bytes read as host (little-endian) u32 words. */
  addr: number[];
  mask: number[];
}

export interface CompiledFilter {
  /** The expression compiled (normalised text for structured specs). */
  text: string;
  insns: FilterInsn[];
  /** A printable listing, like `tcpdump -d`. */
  listing(): string;
}

export type { TcpFlagName };
export type PortSpec = number | string | [number, number];

/**
 * A filter as an object: every field given must match (and), any entry of a list may
 * (or). Addresses are IPv4/IPv6 addresses or CIDR ranges.
 */
export interface PacketFilterSpec {
  /** Source or destination port. */
  ports?: PortSpec[];
  srcPorts?: PortSpec[];
  dstPorts?: PortSpec[];
  /** Source or destination address/range. */
  addresses?: string[];
  srcAddresses?: string[];
  dstAddresses?: string[];
  family?: 4 | 6;
  /** At least one of these flags set. */
  flags?: TcpFlagName[];
  /** None of these flags set. */
  notFlags?: TcpFlagName[];
  /** A tcpdump-like expression, and-ed with the fields above. */
  expression?: string;
}

export type PacketFilter = string | PacketFilterSpec;

type Target = { pc: number } | 'accept' | 'reject';

interface Pending {
  insn: Omit<FilterInsn, 'jt' | 'jf'>;
  jt: Target;
  jf: Target;
  text: string;
}

function toWords(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < 16; i += 4) out.push((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0);
  return out;
}

function maskBytes(prefixLen: number): Uint8Array {
  const m = new Uint8Array(16);
  for (let bit = 0; bit < prefixLen; bit++) m[bit >> 3]! |= 0x80 >> (bit & 7);
  return m;
}

const NO_ADDR = [0, 0, 0, 0];

function expandDirection(node: FilterNode & { dir: Direction }): FilterNode {
  if (node.dir === 'src' || node.dir === 'dst') return node;
  const src = { ...node, dir: 'src' as const };
  const dst = { ...node, dir: 'dst' as const };
  return { kind: node.dir === 'either' ? 'or' : 'and', left: src, right: dst, text: node.text };
}

class Compiler {
  readonly code: Pending[] = [];

  /** Emits code for `node` that continues at `t` when it matches and `f` when not. */
  gen(node: FilterNode, t: Target, f: Target): void {
    switch (node.kind) {
      case 'and': {
        const mid = { pc: -1 };
        this.gen(node.left, mid, f);
        mid.pc = this.code.length;
        this.gen(node.right, t, f);
        return;
      }
      case 'or': {
        const mid = { pc: -1 };
        this.gen(node.left, t, mid);
        mid.pc = this.code.length;
        this.gen(node.right, t, f);
        return;
      }
      case 'not':
        this.gen(node.expr, f, t);
        return;
      case 'net':
      case 'port':
        if (node.dir === 'either' || node.dir === 'both') {
          this.gen(expandDirection(node), t, f);
          return;
        }
        break;
      default:
        break;
    }
    this.code.push({ insn: this.atom(node), jt: t, jf: f, text: node.text });
  }

  private atom(node: FilterNode): Omit<FilterInsn, 'jt' | 'jf'> {
    const base = { family: 0, lo: 0, hi: 0, addr: NO_ADDR, mask: NO_ADDR };
    switch (node.kind) {
      case 'net':
        return {
          ...base,
          op: node.dir === 'src' ? FilterOp.SRC_NET : FilterOp.DST_NET,
          family: node.cidr.family,
          addr: toWords(node.cidr.addr),
          mask: toWords(maskBytes(node.cidr.prefixLen)),
        };
      case 'port':
        return { ...base, op: node.dir === 'src' ? FilterOp.SPORT : FilterOp.DPORT, lo: node.lo, hi: node.hi };
      case 'flags-any':
        return { ...base, op: FilterOp.FLAGS_ANY, lo: node.mask };
      case 'flags-eq':
        return { ...base, op: FilterOp.FLAGS_EQ, lo: node.mask, hi: node.value };
      case 'family':
        return { ...base, op: FilterOp.FAMILY, family: node.family };
      case 'true':
        return { ...base, op: FilterOp.TRUE };
      case 'field':
        // The field number rides in `family`, the mask and value in the first words.
        return { ...base, op: node.cmp === 'eq' ? FilterOp.FIELD_EQ : FilterOp.FIELD_GT, family: node.field, mask: [node.mask, 0, 0, 0], addr: [node.value, 0, 0, 0] };
      default:
        throw new Error(`internal: ${node.kind} is not an atom`);
    }
  }
}

function resolve(target: Target): number {
  if (target === 'accept') return FILTER_ACCEPT;
  if (target === 'reject') return FILTER_REJECT;
  if (target.pc < 0) throw new Error('internal: unresolved filter label');
  return target.pc;
}

const OP_NAMES = Object.fromEntries(Object.entries(FilterOp).map(([k, v]) => [v, k.toLowerCase()]));

/** Compiles an AST into the kernel program; throws FilterError when it does not fit. */
export function compileNode(node: FilterNode, text: string): CompiledFilter {
  if (node.kind === 'true') return { text, insns: [], listing: () => '(accept all)' };
  const c = new Compiler();
  c.gen(node, 'accept', 'reject');
  if (c.code.length > FILTER_MAX_INSNS) {
    const over = c.code[FILTER_MAX_INSNS]!;
    throw new FilterError(
      `filter '${text}' needs ${c.code.length} kernel tests, more than the ${FILTER_MAX_INSNS} the packet program runs; the part past the limit starts at '${over.text}'. ` +
        'Simplify it, e.g. use net ranges or portrange instead of lists.',
      over.text,
      Math.max(0, text.indexOf(over.text)),
    );
  }
  const insns = c.code.map((p) => ({ ...p.insn, jt: resolve(p.jt), jf: resolve(p.jf) }));
  const target = (n: number): string => (n === FILTER_ACCEPT ? 'accept' : n === FILTER_REJECT ? 'reject' : String(n));
  return {
    text,
    insns,
    listing: () => insns.map((i, n) => `(${String(n).padStart(2, '0')}) ${OP_NAMES[i.op]!.padEnd(9)} ${c.code[n]!.text.padEnd(30)} jt ${target(i.jt)} jf ${target(i.jf)}`).join('\n'),
  };
}

function portNode(p: PortSpec, dir: Direction, what: string): FilterNode {
  if (Array.isArray(p)) {
    const [lo, hi] = [parsePort(p[0]), parsePort(p[1])];
    if (lo > hi) throw new TypeError(`bad port range [${lo}, ${hi}] in ${what}`);
    return { kind: 'port', dir, lo, hi, text: `${dir === 'either' ? '' : `${dir} `}portrange ${lo}-${hi}` };
  }
  let port: number;
  try {
    port = parsePort(p);
  } catch (e) {
    throw new TypeError(`${what}: ${(e as Error).message}`);
  }
  return { kind: 'port', dir, lo: port, hi: port, text: `${dir === 'either' ? '' : `${dir} `}port ${port}` };
}

function anyOf(nodes: FilterNode[]): FilterNode | undefined {
  if (nodes.length === 0) return undefined;
  return nodes.reduce((a, b) => ({ kind: 'or', left: a, right: b, text: `${a.text} or ${b.text}` }));
}

function allOf(nodes: FilterNode[]): FilterNode {
  if (nodes.length === 0) return { kind: 'true', text: '' };
  return nodes.reduce((a, b) => ({ kind: 'and', left: a, right: b, text: `(${a.text}) and (${b.text})` }));
}

/** The AST of a structured filter; every value is validated with a message naming it. */
export function specToNode(spec: PacketFilterSpec): FilterNode {
  const known = new Set(['ports', 'srcPorts', 'dstPorts', 'addresses', 'srcAddresses', 'dstAddresses', 'family', 'flags', 'notFlags', 'expression']);
  for (const key of Object.keys(spec)) if (!known.has(key)) throw new TypeError(`unknown filter field '${key}' (known: ${[...known].join(', ')})`);
  const parts: FilterNode[] = [];
  const list = <T>(name: string, v: T[] | undefined): T[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new TypeError(`filter.${name} must be an array`);
    return v;
  };
  const ports = (name: keyof PacketFilterSpec, dir: Direction): void => {
    const n = anyOf(list<PortSpec>(name, spec[name] as PortSpec[] | undefined).map((p) => portNode(p, dir, `filter.${name}`)));
    if (n) parts.push(n);
  };
  const addrs = (name: keyof PacketFilterSpec, dir: Direction): void => {
    const n = anyOf(list<string>(name, spec[name] as string[] | undefined).map((a) => {
      const cidr = parseCidr(String(a));
      return { kind: 'net', dir, cidr, text: `${dir === 'either' ? '' : `${dir} `}net ${cidr.text}` } satisfies FilterNode;
    }));
    if (n) parts.push(n);
  };
  ports('ports', 'either');
  ports('srcPorts', 'src');
  ports('dstPorts', 'dst');
  addrs('addresses', 'either');
  addrs('srcAddresses', 'src');
  addrs('dstAddresses', 'dst');
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6) throw new TypeError(`filter.family must be 4 or 6, got ${String(spec.family)}`);
    parts.push({ kind: 'family', family: spec.family === 4 ? AF_INET : AF_INET6, text: spec.family === 4 ? 'ip' : 'ip6' });
  }
  const flagMask = (name: string, flags: TcpFlagName[]): number => flags.reduce((m, f) => {
    const bit = FLAG_BITS[f];
    if (bit === undefined) throw new TypeError(`filter.${name}: unknown TCP flag '${String(f)}' (fin, syn, rst, psh, ack, urg, ece, cwr)`);
    return m | bit;
  }, 0);
  const flags = list<TcpFlagName>('flags', spec.flags);
  if (flags.length) parts.push({ kind: 'flags-any', mask: flagMask('flags', flags), text: flags.join('|') });
  const notFlags = list<TcpFlagName>('notFlags', spec.notFlags);
  if (notFlags.length) {
    const any: FilterNode = { kind: 'flags-any', mask: flagMask('notFlags', notFlags), text: notFlags.join('|') };
    parts.push({ kind: 'not', expr: any, text: `not ${any.text}` });
  }
  if (spec.expression !== undefined && spec.expression.trim() !== '') parts.push(parseFilter(spec.expression));
  return allOf(parts);
}

/** Parses and compiles a filter (expression or spec) into the kernel program. */
export function compileFilter(filter: PacketFilter | undefined): CompiledFilter {
  if (filter === undefined) return compileNode({ kind: 'true', text: '' }, '');
  if (typeof filter === 'string') return compileNode(parseFilter(filter), filter.trim());
  if (typeof filter !== 'object' || filter === null) throw new TypeError(`filter must be an expression string or an object, got ${typeof filter}`);
  const node = specToNode(filter);
  return compileNode(node, node.text);
}

/** Runs a compiled program in JavaScript (tests, and to explain what the kernel does). */
export interface FilterPacket {
  family: number; saddr: Uint8Array; daddr: Uint8Array; sport: number; dport: number; flags: number;
  /** For tcp[4..15] and len tests (0 when not given). */
  seq?: number; ack?: number; doff?: number; window?: number; frameLen?: number;
}

/** What bpf/packets.bpf.c filter_field() reads. */
function fieldValue(pkt: FilterPacket, field: number): number {
  switch (field) {
    case 0: return ((pkt.sport << 16) | pkt.dport) >>> 0;
    case 1: return (pkt.seq ?? 0) >>> 0;
    case 2: return (pkt.ack ?? 0) >>> 0;
    case 3: return ((((pkt.doff ?? 0) >> 2) << 28) | (pkt.flags << 16) | (pkt.window ?? 0)) >>> 0;
    case FIELD_FRAME_LEN: return (pkt.frameLen ?? 0) >>> 0;
    default: return 0;
  }
}

export function evaluateFilter(program: CompiledFilter, pkt: FilterPacket): boolean {
  if (program.insns.length === 0) return true;
  let pc = 0;
  for (let steps = 0; steps < FILTER_MAX_INSNS && pc < FILTER_MAX_INSNS; steps++) {
    const i = program.insns[pc];
    if (!i) return false;
    let m = false;
    switch (i.op) {
      case FilterOp.SRC_NET:
      case FilterOp.DST_NET: {
        const a = toWords(padded(i.op === FilterOp.SRC_NET ? pkt.saddr : pkt.daddr));
        const words = i.family === AF_INET6 ? 4 : 1;
        m = pkt.family === i.family;
        for (let w = 0; w < words && m; w++) m = ((a[w]! & i.mask[w]!) >>> 0) === i.addr[w];
        break;
      }
      case FilterOp.SPORT: m = pkt.sport >= i.lo && pkt.sport <= i.hi; break;
      case FilterOp.DPORT: m = pkt.dport >= i.lo && pkt.dport <= i.hi; break;
      case FilterOp.FLAGS_ANY: m = (pkt.flags & i.lo) !== 0; break;
      case FilterOp.FLAGS_EQ: m = (pkt.flags & i.lo) === i.hi; break;
      case FilterOp.FAMILY: m = pkt.family === i.family; break;
      case FilterOp.TRUE: m = true; break;
      case FilterOp.FIELD_EQ: m = ((fieldValue(pkt, i.family) & i.mask[0]!) >>> 0) === i.addr[0]; break;
      case FilterOp.FIELD_GT: m = ((fieldValue(pkt, i.family) & i.mask[0]!) >>> 0) > i.addr[0]!; break;
    }
    pc = m ? i.jt : i.jf;
  }
  return pc === FILTER_ACCEPT;
}

function padded(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out.set(bytes);
  return out;
}
