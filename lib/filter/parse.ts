// SPDX-License-Identifier: MIT
// The tcpdump-like filter language of `tcpscope packets`: a subset people know, parsed
// into a small AST that compile.ts turns into the kernel's jump program.
//
//   expr      := or
//   or        := and (('or' | '||') and)*
//   and       := not (('and' | '&&') not)*
//   not       := ('not' | '!') not | primary
//   primary   := '(' expr ')' | relation | primitive
//   primitive := [tcp|ip|ip6] [src|dst|src or dst|src and dst]
//                  (host ADDR | net CIDR | net ADDR mask M | port P | portrange A-B)
//              | ip | ip6 | tcp | [ip|ip6] proto tcp | less N | greater N
//              | syn | ack | fin | rst | psh | urg | ece | cwr      (that flag is set)
//   relation  := arith (= | == | != | < | <= | > | >=) arith
//   arith     := constants (numbers, tcp-syn..., + - * / & | << >>, parentheses), and at
//                most one field: tcp[OFF], tcp[OFF:1|2|4] (OFF a constant; tcpflags = 13) or
//                len, optionally masked: FIELD & CONST
//
// As in tcpdump, a bare value after and/or repeats the previous qualifiers:
// `port 80 or 443` is `port 80 or port 443`. Refused, with the reason in the message:
// other protocols and link layers (udp, icmp, arp, ether, vlan...: tcpscope sees TCP
// only), names (host names are not resolved), ip[]/ip6[] bytes, tcp[] past the fixed
// 16 bytes or at variable offsets, and arithmetic on a field other than a mask.
import fs from 'node:fs';
import net from 'node:net';
import { Cidr, parseCidr, parsePort } from '../net/addr';

export type Direction = 'src' | 'dst' | 'either' | 'both';

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode; text: string }
  | { kind: 'not'; expr: FilterNode; text: string }
  | { kind: 'net'; dir: Direction; cidr: Cidr; text: string }
  | { kind: 'port'; dir: Direction; lo: number; hi: number; text: string }
  /** (flags & mask) != 0 */
  | { kind: 'flags-any'; mask: number; text: string }
  /** (flags & mask) == value */
  | { kind: 'flags-eq'; mask: number; value: number; text: string }
  | { kind: 'family'; family: 2 | 10; text: string }
  /** (field & mask) == value or > value, unsigned; field 0..3: tcp[4k:4], 4: frame length. */
  | { kind: 'field'; field: number; mask: number; cmp: 'eq' | 'gt'; value: number; text: string }
  | { kind: 'true'; text: string };

/** Field numbers of 'field' nodes (bpf/packets.bpf.c filter_field()). */
export const FIELD_FRAME_LEN = 4;

/** Deepest nesting of parentheses / not accepted: the parser recurses once per level. */
export const MAX_FILTER_DEPTH = 100;
/** Most primitives accepted: and/or chains build a tree as deep as they are long, which the
 * compiler walks recursively, and the kernel program runs far fewer tests anyway. */
export const MAX_FILTER_PRIMITIVES = 1000;

export const FLAG_BITS: Record<string, number> = { fin: 0x01, syn: 0x02, rst: 0x04, push: 0x08, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 };

/** Named constants libpcap knows for the TCP header: the flags byte's offset. */
const TCP_CONSTANTS: Record<string, number> = { tcpflags: 13 };

/** A filter expression that cannot be parsed or compiled; `part` is the offending text. */
export class FilterError extends TypeError {
  override readonly name = 'FilterError';
  readonly part: string;
  readonly position: number;
  constructor(message: string, part: string, position: number) {
    super(message);
    this.part = part;
    this.position = position;
  }
}

interface Token {
  text: string;
  pos: number;
  kind: 'word' | 'op';
}

const OPS = ['&&', '||', '!=', '==', '<<', '>>', '>=', '<=', '(', ')', '[', ']', '&', '|', '!', '=', '>', '<', '+', '*'];

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const op = OPS.find((o) => input.startsWith(o, i));
    if (op) {
      tokens.push({ text: op, pos: i, kind: 'op' });
      i += op.length;
      continue;
    }
    const m = /^\\?[A-Za-z0-9_.:/\-]+/.exec(input.slice(i));
    if (!m) throw new FilterError(`unexpected character '${c}' at position ${i + 1} of the filter`, c, i);
    tokens.push({ text: m[0], pos: i, kind: 'word' });
    i += m[0].length;
  }
  return tokens;
}

let services: Map<string, number> | undefined;
function serviceNames(): Map<string, number> {
  if (services) return services;
  services = new Map([['http', 80], ['https', 443], ['ssh', 22], ['smtp', 25], ['domain', 53], ['ftp', 21], ['ftp-data', 20], ['telnet', 23]]);
  try {
    for (const line of fs.readFileSync('/etc/services', 'utf8').split('\n')) {
      const m = /^([\w.-]+)\s+(\d+)\/tcp\b(.*)$/.exec(line.replace(/#.*/, ''));
      if (!m) continue;
      for (const name of [m[1]!, ...m[3]!.trim().split(/\s+/).filter(Boolean)]) if (!services.has(name)) services.set(name, Number(m[2]));
    }
  } catch { /* no /etc/services: the built-in names remain */ }
  return services;
}

/** A constant or a (masked) field, while an arithmetic expression is read. */
type Arith = { kind: 'const'; value: number } | { kind: 'field'; field: number; shift: number; width: number; mask: number; text: string };

const RELOPS = ['=', '==', '!=', '<', '<=', '>', '>='];

interface Qualifiers {
  dir: Direction;
  type: 'host' | 'net' | 'port' | 'portrange';
}

class Parser {
  private i = 0;
  private depth = 0;
  private primitives = 0;
  private last: Qualifiers | undefined;
  constructor(private readonly input: string, private readonly tokens: Token[]) {}

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }

  private next(): Token | undefined {
    return this.tokens[this.i++];
  }

  private fail(message: string, token: Token | undefined): never {
    if (!token) throw new FilterError(`${message} at the end of the filter '${this.input}'`, '', this.input.length);
    throw new FilterError(`${message} at position ${token.pos + 1}: '${this.input.slice(token.pos)}'`, token.text, token.pos);
  }

  private is(text: string, offset = 0): boolean {
    return this.peek(offset)?.text.toLowerCase() === text;
  }

  private textFrom(start: number): string {
    const first = this.tokens[start];
    const last = this.tokens[this.i - 1];
    if (!first || !last) return '';
    return this.input.slice(first.pos, last.pos + last.text.length);
  }

  parse(): FilterNode {
    if (this.tokens.length === 0) return { kind: 'true', text: '' };
    const node = this.parseOr();
    if (this.i < this.tokens.length) this.fail("expected 'and', 'or' or the end", this.peek());
    return node;
  }

  private parseOr(): FilterNode {
    const start = this.i;
    let left = this.parseAnd();
    while (this.is('or') || this.is('||')) {
      this.next();
      const right = this.parseAnd();
      left = { kind: 'or', left, right, text: this.textFrom(start) };
    }
    return left;
  }

  private parseAnd(): FilterNode {
    const start = this.i;
    let left = this.parseNot();
    while (this.is('and') || this.is('&&')) {
      this.next();
      const right = this.parseNot();
      left = { kind: 'and', left, right, text: this.textFrom(start) };
    }
    return left;
  }

  /** Counts one level of recursion; refuses expressions nested past MAX_FILTER_DEPTH. */
  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_FILTER_DEPTH) this.fail(`the filter is nested more than ${MAX_FILTER_DEPTH} levels deep: simplify the filter`, this.peek());
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private parseNot(): FilterNode {
    const start = this.i;
    if (this.is('not') || this.is('!')) {
      this.next();
      const expr = this.nested(() => this.parseNot());
      return { kind: 'not', expr, text: this.textFrom(start) };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): FilterNode {
    const token = this.peek();
    if (!token) this.fail('expected a filter primitive', token);
    if (token.text !== '(' && ++this.primitives > MAX_FILTER_PRIMITIVES) {
      this.fail(`the filter has more than ${MAX_FILTER_PRIMITIVES} primitives: simplify the filter (net and portrange cover ranges)`, token);
    }
    if (token.text === '(') {
      // `(tcp[13] & 3) != 0` is a relation, `(port 1 or port 2)` a group: try the relation
      // when the parentheses hold a field, and report whichever reading got further.
      const start = this.i;
      if (this.fieldAhead()) {
        try {
          return this.parseRelation();
        } catch (e) {
          if (!(e instanceof FilterError)) throw e;
          const relationError = e;
          this.i = start;
          try {
            return this.parseGroup();
          } catch (e2) {
            if (e2 instanceof FilterError && e2.position < relationError.position) throw relationError;
            throw e2;
          }
        }
      }
      return this.parseGroup();
    }
    if (this.startsRelation()) return this.parseRelation();
    return this.parsePrimitive();
  }

  private parseGroup(): FilterNode {
    this.next();
    const inner = this.nested(() => this.parseOr());
    if (!this.is(')')) this.fail("expected ')'", this.peek());
    this.next();
    return inner;
  }

  /** Whether a field (tcp[...], len) appears before the parentheses opened here close. */
  private fieldAhead(): boolean {
    let level = 0;
    for (let k = this.i; k < this.tokens.length; k++) {
      const t = this.tokens[k]!.text.toLowerCase();
      if (t === '(') level++;
      else if (t === ')' && --level === 0) return false;
      else if (t === 'len' || ((t === 'tcp' || t === 'ip' || t === 'ip6') && this.tokens[k + 1]?.text === '[')) return true;
    }
    return false;
  }

  /** A relation starts with a field, a number or a flag constant. */
  private startsRelation(): boolean {
    const t = this.peek()?.text.toLowerCase() ?? '';
    if ((t === 'tcp' || t === 'ip' || t === 'ip6') && this.is('[', 1)) return true;
    if (t === 'len') return true;
    return /^(0x[0-9a-f]+|\d+)$/.test(t) && this.last === undefined || /^tcp-\w+$/.test(t);
  }

  // ---- relations: arith relop arith --------------------------------------------------

  private parseRelation(): FilterNode {
    const start = this.i;
    const left = this.parseArith();
    const op = this.next();
    if (!op || !RELOPS.includes(op.text)) this.fail(`expected a comparison (${RELOPS.join(' ')})`, op);
    const right = this.parseArith();
    const text = this.textFrom(start);
    let field: Extract<Arith, { kind: 'field' }>, value: number, cmp = op.text === '==' ? '=' : op.text;
    if (left.kind === 'field' && right.kind === 'const') {
      field = left; value = right.value;
    } else if (left.kind === 'const' && right.kind === 'field') {
      field = right; value = left.value;
      cmp = ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as Record<string, string>)[cmp] ?? cmp;
    } else {
      this.fail(left.kind === 'field' ? 'compare a packet field with a constant, not with another field' : 'the comparison needs a packet field (tcp[...] or len)', this.tokens[start]);
    }
    return this.fieldTest(field, cmp, value, text);
  }

  /** (field & mask) CMP value as eq/gt tests, with not for the rest. */
  private fieldTest(f: Extract<Arith, { kind: 'field' }>, cmp: string, value: number, text: string): FilterNode {
    const max = f.mask; // the field's largest value after its mask
    const never: FilterNode = { kind: 'not', expr: { kind: 'true', text }, text };
    const always: FilterNode = { kind: 'true', text };
    const test = (c: 'eq' | 'gt', v: number): FilterNode => {
      if (v > max) return never; // the masked field cannot reach it
      if (f.field === 3 && f.shift === 16 && f.width === 8 && c === 'eq') {
        // tcp[13]: the flags byte, as the kernel's flag tests
        return v === 0 ? { kind: 'not', expr: { kind: 'flags-any', mask: f.mask, text }, text } : { kind: 'flags-eq', mask: f.mask, value: v, text };
      }
      return { kind: 'field', field: f.field, mask: (f.mask * 2 ** f.shift) >>> 0, cmp: c, value: (v * 2 ** f.shift) >>> 0, text };
    };
    const not = (n: FilterNode): FilterNode => (n === never ? always : n.kind === 'not' && n.expr.kind !== 'true' ? n.expr : { kind: 'not', expr: n, text });
    switch (cmp) {
      case '=': return test('eq', value);
      case '!=': return not(test('eq', value));
      case '>': return value >= max ? never : test('gt', value);
      case '>=': return value === 0 ? always : value > max ? never : test('gt', value - 1);
      case '<': return value === 0 ? never : value > max ? always : not(test('gt', value - 1));
      case '<=': return value >= max ? always : not(test('gt', value));
    }
    return this.fail(`unknown comparison '${cmp}'`, undefined);
  }

  private parseArith(): Arith {
    return this.nested(() => this.arithBinary(0));
  }

  private static readonly PRECEDENCE: ReadonlyArray<readonly string[]> = [['|'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/']];

  private arithBinary(level: number): Arith {
    if (level >= Parser.PRECEDENCE.length) return this.arithAtom();
    let left = this.arithBinary(level + 1);
    while (this.peek() && Parser.PRECEDENCE[level]!.includes(this.peek()!.text)) {
      const op = this.next()!;
      const right = this.arithBinary(level + 1);
      left = this.combine(left, op, right);
    }
    return left;
  }

  private combine(a: Arith, op: Token, b: Arith): Arith {
    if (a.kind === 'const' && b.kind === 'const') {
      const x = a.value, y = b.value;
      const v = { '|': x | y, '&': x & y, '<<': x << y, '>>': x >>> y, '+': x + y, '-': x - y, '*': x * y, '/': y ? Math.floor(x / y) : NaN }[op.text]!;
      if (!Number.isFinite(v)) this.fail('division by zero', op);
      return { kind: 'const', value: v >>> 0 };
    }
    if (op.text === '&') {
      const field = a.kind === 'field' ? a : (b as Extract<Arith, { kind: 'field' }>);
      const mask = a.kind === 'const' ? a.value : b.kind === 'const' ? b.value : this.fail('mask a field with a constant, not with another field', op);
      return { ...field, mask: (field.mask & mask) >>> 0 };
    }
    if (op.text === '|' && a.kind === 'field' && b.kind === 'const') {
      this.fail(`'&' binds tighter than '|', as in tcpdump: write the mask in parentheses, e.g. ${a.text} & (tcp-syn|tcp-ack)`, op);
    }
    return this.fail(`only '&' (a mask) may be applied to a packet field before comparing it ('${op.text}' is not supported on fields)`, op);
  }

  private arithAtom(): Arith {
    const token = this.peek();
    if (!token) this.fail('expected a number, a TCP flag or a packet field', token);
    const t = token.text.toLowerCase();
    if (t === '(') {
      this.next();
      const inner = this.parseArith();
      if (!this.is(')')) this.fail("expected ')'", this.peek());
      this.next();
      return inner;
    }
    if (t === 'len') {
      this.next();
      return { kind: 'field', field: FIELD_FRAME_LEN, shift: 0, width: 32, mask: 0xffffffff, text: 'len' };
    }
    if ((t === 'ip' || t === 'ip6') && this.is('[', 1)) this.fail(`${t}[...] is not supported: tcpscope's kernel filter reads the TCP header (tcp[...]), addresses (host/net) and len`, token);
    if (t === 'tcp' && this.is('[', 1)) return this.tcpField();
    if (/^(0x[0-9a-f]+|\d+)$/.test(t)) {
      this.next();
      const n = Number(t);
      if (n > 0xffffffff) this.fail(`${t} does not fit 32 bits`, token);
      return { kind: 'const', value: n };
    }
    if (/^tcp-\w+$/.test(t) || Object.hasOwn(TCP_CONSTANTS, t)) {
      this.next();
      return { kind: 'const', value: this.flagConstant(token) };
    }
    return this.fail(`expected a number, a TCP flag (tcp-syn...) or a packet field (tcp[...], len), not '${token.text}'`, token);
  }

  private flagConstant(token: Token): number {
    const t = token.text.toLowerCase();
    if (Object.hasOwn(TCP_CONSTANTS, t)) return TCP_CONSTANTS[t]!;
    const m = /^tcp-(\w+)$/.exec(t);
    const bit = m && Object.hasOwn(FLAG_BITS, m[1]!) ? FLAG_BITS[m[1]!] : undefined;
    if (bit === undefined) this.fail(`unknown TCP flag '${token.text}' (expected tcp-syn, tcp-ack, tcp-fin, tcp-rst, tcp-push, tcp-urg, tcp-ece, tcp-cwr)`, token);
    return bit;
  }

  /** tcp[OFF] / tcp[OFF:SIZE]: a byte, half-word or word of the TCP header's first 16 bytes. */
  private tcpField(): Arith {
    const start = this.i;
    this.next(); // tcp
    this.next(); // [
    const offTok = this.peek();
    let off: number, size = 1;
    // `13:2` is one word token (':' belongs to words, for IPv6 addresses).
    const combined = offTok && /^(\d+):(\d+)$/.exec(offTok.text);
    if (combined) {
      this.next();
      off = Number(combined[1]); size = Number(combined[2]);
    } else {
      for (let k = this.i, level = 0; k < this.tokens.length; k++) {
        const t = this.tokens[k]!.text.toLowerCase();
        if (t === '[') level++;
        else if (t === ']' && level-- === 0) break;
        else if (t === 'len' || t === 'tcp' || t === 'ip' || t === 'ip6') this.fail('tcp[...] offsets must be constants: variable offsets (e.g. tcp[(tcp[12] & 0xf0) >> 2]) are not supported', offTok);
      }
      const o = this.parseArith();
      if (o.kind !== 'const') this.fail('tcp[...] offsets must be constants: variable offsets (e.g. tcp[(tcp[12] & 0xf0) >> 2]) are not supported', offTok);
      off = o.value;
      const sz = this.peek();
      if (sz && /^:\d+$/.test(sz.text)) {
        this.next();
        size = Number(sz.text.slice(1));
      }
    }
    if (!this.is(']')) this.fail("expected ']'", this.peek());
    this.next();
    if (![1, 2, 4].includes(size)) this.fail(`tcp[${off}:${size}]: the size must be 1, 2 or 4`, this.tokens[start]);
    if (off + size > 16) this.fail(`tcp[${off}:${size}] is past the 16 bytes the kernel filter keeps of the TCP header (ports, seq, ack, offset, flags, window): the checksum, urgent pointer and options cannot be tested`, this.tokens[start]);
    if ((off & 3) + size > 4) this.fail(`tcp[${off}:${size}] straddles a 4-byte boundary of the header: test the parts separately (e.g. tcp[${off}:${4 - (off & 3)}])`, this.tokens[start]);
    const width = size * 8;
    return { kind: 'field', field: off >> 2, shift: (4 - (off & 3) - size) * 8, width, mask: width === 32 ? 0xffffffff : 2 ** width - 1, text: this.textFrom(start) };
  }

  private parsePrimitive(): FilterNode {
    const start = this.i;
    const token = this.peek()!;
    const word = token.text.toLowerCase();

    if (word === 'tcp' || word === 'ip' || word === 'ip6') {
      // A protocol qualifier (`tcp port 80`, `ip src host ...`, `ip6 net ...`) or on its own.
      this.next();
      const family: FilterNode | undefined = word === 'tcp' ? undefined : { kind: 'family', family: word === 'ip' ? 2 : 10, text: word };
      const nextWord = this.peek()?.text.toLowerCase();
      let rest: FilterNode | undefined;
      if (nextWord === 'proto') rest = this.parseProto(start);
      else if (nextWord && ['src', 'dst', 'host', 'net', 'port', 'portrange'].includes(nextWord)) rest = this.parsePrimitive();
      if (!rest) return family ?? { kind: 'true', text: 'tcp' };
      if (!family) return rest;
      return { kind: 'and', left: family, right: rest, text: this.textFrom(start) };
    }
    if (word === 'proto') return this.parseProto(start);
    if (word === 'less' || word === 'greater') {
      this.next();
      const n = this.next();
      if (!n || !/^\d+$/.test(n.text)) this.fail(`expected a length after '${word}'`, n);
      const len: Extract<Arith, { kind: 'field' }> = { kind: 'field', field: FIELD_FRAME_LEN, shift: 0, width: 32, mask: 0xffffffff, text: 'len' };
      return this.fieldTest(len, word === 'less' ? '<=' : '>=', Number(n.text), this.textFrom(start));
    }
    if (Object.hasOwn(FLAG_BITS, word) && word !== 'push') { this.next(); return { kind: 'flags-any', mask: FLAG_BITS[word]!, text: word }; }
    if (['udp', 'icmp', 'icmp6', 'arp', 'rarp', 'sctp', 'igmp', 'pim', 'vrrp', 'ah', 'esp', 'ether', 'fddi', 'tr', 'wlan', 'vlan', 'mpls', 'pppoed', 'pppoes', 'geneve', 'llc', 'decnet', 'iso', 'atalk', 'aarp', 'ipx', 'netbeui', 'stp', 'broadcast', 'multicast', 'gateway', 'inbound', 'outbound', 'ifname', 'on', 'rnr', 'rulenum', 'reason', 'rset', 'srnr', 'subrulenum', 'action', 'type', 'subtype', 'dir'].includes(word)) {
      this.fail(`'${word}' is not supported: tcpscope sees incoming TCP over IPv4/IPv6 only and filters on addresses, ports, lengths and the TCP header`, token);
    }

    // [dir] [type] value
    let dir: Direction | undefined;
    if (word === 'src' || word === 'dst') {
      this.next();
      dir = word;
      if ((this.is('or') || this.is('and')) && (this.is('src', 1) || this.is('dst', 1)) && this.peek(1)!.text.toLowerCase() !== word) {
        dir = this.is('or') ? 'either' : 'both';
        this.next();
        this.next();
      }
    }
    let type: Qualifiers['type'] | undefined;
    const t = this.peek()?.text.toLowerCase();
    if (t === 'host' || t === 'net' || t === 'port' || t === 'portrange') {
      type = t;
      this.next();
    }
    if (!dir && !type) {
      // A bare value repeats the previous qualifiers (`port 80 or 443`).
      if (this.last && token.kind === 'word') return this.parseValue(this.last, start);
      this.fail(`unknown filter primitive '${token.text}' (expected host, net, port, portrange, src, dst, ip, ip6, tcp[tcpflags], syn, ack, fin, rst, not, '(')`, token);
    }
    const value = this.peek();
    if (!type) type = value && /^\d+$/.test(value.text) ? 'port' : 'host';
    const q: Qualifiers = { dir: dir ?? 'either', type };
    this.last = q;
    return this.parseValue(q, start);
  }

  /** `proto tcp` / `proto 6` (every packet tcpscope sees); other protocols are refused. */
  private parseProto(start: number): FilterNode {
    this.next(); // proto
    const v = this.next();
    if (!v) this.fail("expected a protocol after 'proto'", v);
    const t = v.text.replace(/^\\/, '').toLowerCase();
    if (t !== 'tcp' && t !== '6') this.fail(`'proto ${v.text}' is not supported: tcpscope sees TCP only (proto tcp / proto 6)`, v);
    return { kind: 'true', text: this.textFrom(start) };
  }

  private parseValue(q: Qualifiers, start: number): FilterNode {
    const token = this.next();
    if (!token || token.kind !== 'word') this.fail(`expected a value after '${q.type}'`, token);
    const text = (): string => this.textFrom(start);
    if (q.type === 'port') {
      const port = this.port(token);
      return { kind: 'port', dir: q.dir, lo: port, hi: port, text: text() };
    }
    if (q.type === 'portrange') {
      const m = /^([\w]+)-([\w]+)$/.exec(token.text);
      if (!m) this.fail(`bad port range '${token.text}': expected LOW-HIGH, e.g. 8000-8080`, token);
      const lo = this.port({ ...token, text: m[1]! });
      const hi = this.port({ ...token, text: m[2]! });
      if (lo > hi) this.fail(`bad port range '${token.text}': ${lo} > ${hi}`, token);
      return { kind: 'port', dir: q.dir, lo, hi, text: text() };
    }
    if (q.type === 'host') {
      if (token.text.includes('/')) this.fail(`'host' takes an address, not a range ('${token.text}'): use 'net ${token.text}'`, token);
      if (net.isIP(token.text) === 0) this.fail(`bad host address '${token.text}': expected an IPv4 or IPv6 address (names are not resolved)`, token);
      return { kind: 'net', dir: q.dir, cidr: parseCidr(token.text), text: text() };
    }
    // net
    let cidrText = token.text;
    if (!cidrText.includes('/') && net.isIP(cidrText) === 0 && /^\d+(\.\d+){0,2}$/.test(cidrText)) {
      const parts = cidrText.split('.');
      cidrText = `${[...parts, '0', '0', '0'].slice(0, 4).join('.')}/${parts.length * 8}`;
    }
    if (this.is('mask')) {
      this.next();
      const mask = this.next();
      if (!mask || net.isIPv4(mask.text) === false) this.fail(`bad netmask after 'mask'`, mask);
      const bits = mask.text.split('.').map(Number).reduce((acc, b) => acc * 256 + b, 0);
      const len = 32 - Math.log2(2 ** 32 - bits);
      if (!Number.isInteger(len)) this.fail(`netmask '${mask.text}' is not contiguous`, mask);
      cidrText = `${cidrText}/${len}`;
    }
    let cidr: Cidr;
    try {
      cidr = parseCidr(cidrText);
    } catch (e) {
      this.fail((e as Error).message, token);
    }
    return { kind: 'net', dir: q.dir, cidr, text: text() };
  }

  private port(token: Token): number {
    if (/^\d+$/.test(token.text)) {
      try {
        return parsePort(token.text);
      } catch (e) {
        this.fail((e as Error).message, token);
      }
    }
    const known = serviceNames().get(token.text.toLowerCase());
    if (known === undefined) this.fail(`unknown port '${token.text}': use a number (0..65535) or a service name from /etc/services`, token);
    return known;
  }

}

/** Parses a tcpdump-like expression; throws FilterError naming the part it cannot read. */
export function parseFilter(expression: string): FilterNode {
  return new Parser(expression, tokenize(expression)).parse();
}
