// The tcpdump-like filter language of `tcpscope packets`: a subset people know, parsed
// into a small AST that compile.ts turns into the kernel's jump program.
//
//   expr      := or
//   or        := and (('or' | '||') and)*
//   and       := not (('and' | '&&') not)*
//   not       := ('not' | '!') not | primary
//   primary   := '(' expr ')' | primitive
//   primitive := [src|dst|src or dst|src and dst] (host ADDR | net CIDR [mask M] | port P | portrange A-B)
//              | ip | ip6 | tcp
//              | tcp[tcpflags] [& FLAGS] (== | = | !=) FLAGS       (also tcp[13], > 0)
//              | syn | ack | fin | rst | psh | urg | ece | cwr      (that flag is set)
//   FLAGS     := flag ('|' flag)*, flag = tcp-syn | tcp-ack | ... | number
//
// As in tcpdump, a bare value after and/or repeats the previous qualifiers:
// `port 80 or 443` is `port 80 or port 443`.
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
  | { kind: 'true'; text: string };

export const FLAG_BITS: Record<string, number> = { fin: 0x01, syn: 0x02, rst: 0x04, push: 0x08, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 };

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

const OPS = ['&&', '||', '!=', '==', '>=', '<=', '(', ')', '[', ']', '&', '|', '!', '=', '>', '<'];

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
    const m = /^[A-Za-z0-9_.:/\-]+/.exec(input.slice(i));
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

interface Qualifiers {
  dir: Direction;
  type: 'host' | 'net' | 'port' | 'portrange';
}

/** Parentheses and `not`s nested deeper than this are refused (no real filter needs more; recursion is bounded). */
export const MAX_FILTER_DEPTH = 100;
/** Primitives beyond this are refused before compiling (the kernel program runs far fewer tests anyway). */
export const MAX_FILTER_PRIMITIVES = 1000;

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
    if (token.text === '(') {
      this.next();
      const inner = this.nested(() => this.parseOr());
      if (!this.is(')')) this.fail("expected ')'", this.peek());
      this.next();
      return inner;
    }
    return this.parsePrimitive();
  }

  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_FILTER_DEPTH) this.fail(`nested more than ${MAX_FILTER_DEPTH} deep (parentheses and 'not'): simplify the filter`, this.peek());
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private parsePrimitive(): FilterNode {
    const start = this.i;
    const token = this.peek()!;
    if (++this.primitives > MAX_FILTER_PRIMITIVES) this.fail(`more than ${MAX_FILTER_PRIMITIVES} primitives: simplify the filter`, token);
    const word = token.text.toLowerCase();

    if (word === 'tcp' && this.is('[', 1)) return this.parseFlagsTest();
    if (word === 'tcp') { this.next(); return { kind: 'true', text: 'tcp' }; }
    if (word === 'ip') { this.next(); return { kind: 'family', family: 2, text: 'ip' }; }
    if (word === 'ip6') { this.next(); return { kind: 'family', family: 10, text: 'ip6' }; }
    if (Object.hasOwn(FLAG_BITS, word) && word !== 'push') { this.next(); return { kind: 'flags-any', mask: FLAG_BITS[word]!, text: word }; }
    if (['udp', 'icmp', 'icmp6', 'arp', 'rarp', 'sctp', 'ether', 'vlan', 'mpls', 'less', 'greater', 'len', 'broadcast', 'multicast', 'gateway', 'proto', 'inbound', 'outbound'].includes(word)) {
      this.fail(`'${word}' is not supported: tcpscope sees incoming TCP only and filters on addresses, ports and TCP flags`, token);
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

  /** tcp[tcpflags] [& FLAGS] op FLAGS, and tcp[13] for the same byte. */
  private parseFlagsTest(): FilterNode {
    const start = this.i;
    this.next(); // tcp
    this.next(); // [
    const field = this.next();
    if (!field || !['tcpflags', '13'].includes(field.text.toLowerCase())) {
      this.fail(`only tcp[tcpflags] (or tcp[13]) can be tested, not tcp[${field?.text ?? ''}]`, field);
    }
    if (!this.is(']')) this.fail("expected ']'", this.peek());
    this.next();
    let mask = 0xff;
    if (this.is('&')) {
      this.next();
      mask = this.flagsValue();
    }
    const op = this.next();
    if (!op || !['==', '=', '!=', '>'].includes(op.text)) this.fail("expected '!=', '==' or '> 0' in the tcp[tcpflags] test", op);
    const value = this.flagsValue();
    const text = this.textFrom(start);
    if (op.text === '>') {
      if (value !== 0) this.fail("only '> 0' is supported for tcp[tcpflags]", op);
      return { kind: 'flags-any', mask, text };
    }
    if (value === 0) {
      const any: FilterNode = { kind: 'flags-any', mask, text };
      return op.text === '!=' ? any : { kind: 'not', expr: any, text };
    }
    const eq: FilterNode = { kind: 'flags-eq', mask, value, text };
    return op.text === '!=' ? { kind: 'not', expr: eq, text } : eq;
  }

  private flagsValue(): number {
    const open = this.is('(');
    if (open) this.next();
    let value = this.flag();
    while (this.is('|')) {
      this.next();
      value |= this.flag();
    }
    if (open) {
      if (!this.is(')')) this.fail("expected ')'", this.peek());
      this.next();
    }
    return value;
  }

  private flag(): number {
    const token = this.next();
    if (!token) this.fail('expected a TCP flag (tcp-syn, tcp-ack, tcp-fin, tcp-rst, tcp-push, tcp-urg, tcp-ece, tcp-cwr) or a number', token);
    const t = token.text.toLowerCase();
    if (/^(0x[0-9a-f]+|\d+)$/.test(t)) {
      const n = Number(t);
      if (n > 255) this.fail(`flag value ${t} does not fit the flags byte`, token);
      return n;
    }
    const m = /^tcp-(\w+)$/.exec(t);
    const bit = m && Object.hasOwn(FLAG_BITS, m[1]!) ? FLAG_BITS[m[1]!] : undefined;
    if (bit === undefined) this.fail(`unknown TCP flag '${token.text}' (expected tcp-syn, tcp-ack, tcp-fin, tcp-rst, tcp-push, tcp-urg, tcp-ece, tcp-cwr)`, token);
    return bit;
  }
}

/** Parses a tcpdump-like expression; throws FilterError naming the part it cannot read. */
export function parseFilter(expression: string): FilterNode {
  return new Parser(expression, tokenize(expression)).parse();
}
