// SPDX-License-Identifier: MIT
// Unit tests of the tcpdump-like filter: parser, compiler to the kernel jump program, and
// the JavaScript evaluator that mirrors the kernel interpreter.
import { describe, expect, it } from 'vitest';
import { compileFilter, evaluateFilter, FilterError, parseFilter, FILTER_ACCEPT, FILTER_REJECT, FilterOp } from '../lib/filter';
import { parseIp } from '../lib/bpf/packet';

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

function pkt(src: string, sport: number, dst: string, dport: number, flags = SYN) {
  const s = new Uint8Array(16); s.set(parseIp(src));
  const d = new Uint8Array(16); d.set(parseIp(dst));
  return { family: src.includes(':') ? 10 : 2, saddr: s, daddr: d, sport, dport, flags };
}

function matches(expr: string, p: ReturnType<typeof pkt>): boolean {
  return evaluateFilter(compileFilter(expr), p);
}

describe('filter parser', () => {
  it('parses primitives with qualifiers into an AST', () => {
    expect(parseFilter('src host 10.0.0.1')).toMatchObject({ kind: 'net', dir: 'src', cidr: { prefixLen: 32 } });
    expect(parseFilter('net fd00::/64')).toMatchObject({ kind: 'net', dir: 'either', cidr: { family: 10, prefixLen: 64 } });
    expect(parseFilter('dst port 80')).toMatchObject({ kind: 'port', dir: 'dst', lo: 80, hi: 80 });
    expect(parseFilter('portrange 8000-8080')).toMatchObject({ kind: 'port', lo: 8000, hi: 8080 });
    expect(parseFilter('src or dst port 22')).toMatchObject({ kind: 'port', dir: 'either' });
    expect(parseFilter('src and dst net 10.0.0.0/8')).toMatchObject({ kind: 'net', dir: 'both' });
    expect(parseFilter('net 192.168 ')).toMatchObject({ kind: 'net', cidr: { prefixLen: 16 } });
    expect(parseFilter('net 10.1.0.0 mask 255.255.0.0')).toMatchObject({ kind: 'net', cidr: { prefixLen: 16 } });
    expect(parseFilter('tcp[tcpflags] & tcp-syn != 0')).toMatchObject({ kind: 'flags-any', mask: SYN });
    expect(parseFilter('tcp[13] & (tcp-syn|tcp-ack) == tcp-syn')).toMatchObject({ kind: 'flags-eq', mask: SYN | ACK, value: SYN });
    expect(parseFilter('syn')).toMatchObject({ kind: 'flags-any', mask: SYN });
    expect(parseFilter('port http')).toMatchObject({ kind: 'port', lo: 80 });
    expect(parseFilter('')).toMatchObject({ kind: 'true' });
  });

  it('refuses what it cannot do in the kernel, saying why; survives hostile input', () => {
    const refused: Array<[string, RegExp]> = [
      ['udp', /'udp' is not supported: tcpscope sees incoming TCP over IPv4\/IPv6 only/],
      ['ether host 00:11:22:33:44:55', /'ether' is not supported/],
      ['ip[8] < 64', /ip\[\.\.\.\] is not supported/],
      ['tcp[(tcp[12] & 0xf0) >> 2] = 0x47', /variable offsets/],
      ['tcp[16:2] = 0', /past the 16 bytes/],
      ['tcp[2:4] = 0', /straddles a 4-byte boundary/],
      ['tcp[13] + 1 = 3', /only '&' \(a mask\)/],
      ['tcp[tcpflags] & tcp-syn|tcp-ack == tcp-syn', /'&' binds tighter than '\|', as in tcpdump: write the mask in parentheses/],
      ['tcp[0:2] = tcp[2:2]', /not with another field/],
      ['proto udp', /proto udp' is not supported/],
      ['host example.com', /names are not resolved/],
      ['constructor', /unknown filter primitive 'constructor'/],
      ['__proto__', /unknown filter primitive '__proto__'/],
      ['tcp[tcpflags] & tcp-constructor != 0', /unknown TCP flag 'tcp-constructor'/],
      ['tcp[toString] = 1', /expected a number/],
      [`${'('.repeat(5000)}port 1${')'.repeat(5000)}`, /nested more than 100 levels/],
      [`${'not '.repeat(5000)}port 1`, /nested more than 100 levels/],
    ];
    for (const [expr, why] of refused) expect(() => compileFilter(expr), expr.slice(0, 40)).toThrow(why);
    expect(compileFilter(`${'('.repeat(50)}port 1${')'.repeat(50)}`).insns.length).toBe(2);
  });

  it('compiles header and length relations, folding constants', () => {
    const p = { ...pkt('10.0.0.1', 1234, '10.0.0.2', 80, SYN | ACK), seq: 0x90000000, ack: 5, doff: 32, window: 512, frameLen: 74 };
    const m = (expr: string): boolean => evaluateFilter(compileFilter(expr), p);
    expect(m('tcp[13] = 18')).toBe(true);
    expect(m('tcp[13] = tcp-syn | tcp-ack')).toBe(true);
    expect(m('tcp[0:2] = 1234 and tcp[2:2] = 0x50')).toBe(true);
    expect(m('tcp[4:4] > 0x80000000')).toBe(true);
    expect(m('tcp[8:4] = 5')).toBe(true);
    expect(m('tcp[12] & 0xf0 = 0x80')).toBe(true);
    expect(m('tcp[14:2] <= 512 and tcp[14:2] >= 512 and not tcp[14:2] < 512')).toBe(true);
    expect(m('(tcp[tcpflags] & (tcp-fin|tcp-rst)) != 0')).toBe(false);
    expect(m('less 74 and greater 74 and len = 74 and len != 75')).toBe(true);
    expect(m('len > 74 or len < 74')).toBe(false);
    expect(m('tcp[13] = 256')).toBe(false); // cannot fit the byte
    expect(m('2 * 9 = tcp[13]')).toBe(true); // constants fold, the field may come second
    expect(m('tcp src portrange 1-65535')).toBe(true);
    expect(m('ip6 proto 6')).toBe(false);
  });

  it('gives and precedence over or, and lets not bind tightest', () => {
    const n = parseFilter('port 1 or port 2 and not port 3');
    expect(n.kind).toBe('or');
    expect(n.kind === 'or' && n.right.kind).toBe('and');
  });

  it('repeats the previous qualifiers for a bare value (port 80 or 443)', () => {
    const n = parseFilter('dst port 80 or 443');
    expect(n).toMatchObject({ kind: 'or', left: { kind: 'port', dir: 'dst', lo: 80 }, right: { kind: 'port', dir: 'dst', lo: 443 } });
  });

  it('names the part it cannot read', () => {
    const err = (expr: string): FilterError => {
      try { compileFilter(expr); } catch (e) { return e as FilterError; }
      throw new Error(`'${expr}' compiled`);
    };
    expect(err('udp port 53')).toBeInstanceOf(FilterError);
    expect(err('udp port 53').message).toMatch(/'udp' is not supported/);
    expect(err('port 80 and frobnicate').part).toBe('frobnicate');
    expect(err('port 70000').message).toMatch(/bad port '70000'/);
    expect(err('host 10.0.0.0/8').message).toMatch(/use 'net 10.0.0.0\/8'/);
    expect(err('net 10.0.0.0/33').message).toMatch(/prefix length/);
    expect(err('tcp[20] & 1 != 0').message).toMatch(/past the 16 bytes/);
    expect(err('tcp[tcpflags] & tcp-bogus != 0').part).toBe('tcp-bogus');
    expect(err('(port 1').message).toMatch(/expected '\)'/);
    expect(err('port 1 port 2').message).toMatch(/expected 'and', 'or'/);
    expect(err('host').message).toMatch(/at the end/);
  });

  it('refuses programs longer than the kernel runs, naming where it overflows', () => {
    const many = Array.from({ length: 20 }, (_, i) => `port ${1000 + i}`).join(' or ');
    let e: unknown;
    try { compileFilter(many); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(FilterError);
    expect((e as Error).message).toMatch(/needs 40 kernel tests, more than the 32/);
    expect((e as FilterError).part).toMatch(/port 1016/);
  });
});

describe('filter compiler (jump program)', () => {
  it('compiles and/or/not to forward jumps ending in accept/reject', () => {
    const f = compileFilter('src net 10.0.0.0/8 and not (port 22 or syn)');
    expect(f.insns.map((i) => i.op)).toEqual([FilterOp.SRC_NET, FilterOp.SPORT, FilterOp.DPORT, FilterOp.FLAGS_ANY]);
    f.insns.forEach((insn, pc) => {
      for (const t of [insn.jt, insn.jf]) expect(t === FILTER_ACCEPT || t === FILTER_REJECT || t > pc).toBe(true);
    });
    expect(f.listing()).toMatch(/src_net/);
    // addresses are network-order bytes read as little-endian words
    expect(f.insns[0]!.addr[0]).toBe(10);
    expect(f.insns[0]!.mask[0]).toBe(0xff);
  });

  it('an empty filter is an empty program (accept all)', () => {
    expect(compileFilter('').insns).toEqual([]);
    expect(compileFilter(undefined).insns).toEqual([]);
  });

  it('evaluates like tcpdump on sample packets', () => {
    const a = pkt('10.1.2.3', 40000, '192.168.0.1', 80, SYN);
    const b = pkt('172.16.0.9', 80, '10.1.2.3', 40000, SYN | ACK);
    const c = pkt('fd00::5', 5555, 'fd00::1', 443, ACK);
    expect(matches('port 80', a)).toBe(true);
    expect(matches('port 80', b)).toBe(true);
    expect(matches('dst port 80', b)).toBe(false);
    expect(matches('src net 10.0.0.0/8', a)).toBe(true);
    expect(matches('src net 10.0.0.0/8', b)).toBe(false);
    expect(matches('net 10.0.0.0/8', b)).toBe(true);
    expect(matches('host 10.1.2.3 and dst port 80', a)).toBe(true);
    expect(matches('tcp[tcpflags] & tcp-syn != 0', b)).toBe(true);
    expect(matches('tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', b)).toBe(false);
    expect(matches('tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', a)).toBe(true);
    expect(matches('tcp[tcpflags] == tcp-ack', c)).toBe(true);
    expect(matches('tcp[tcpflags] & tcp-syn == 0', c)).toBe(true);
    expect(matches('not syn', c)).toBe(true);
    expect(matches('fin or rst', pkt('1.1.1.1', 1, '2.2.2.2', 2, FIN | ACK))).toBe(true);
    expect(matches('fin or rst', pkt('1.1.1.1', 1, '2.2.2.2', 2, RST))).toBe(true);
    expect(matches('fin or rst', a)).toBe(false);
    expect(matches('ip6 and net fd00::/16', c)).toBe(true);
    expect(matches('ip6', a)).toBe(false);
    expect(matches('ip and net fd00::/16', c)).toBe(false);
    expect(matches('src host fd00::5', c)).toBe(true);
    expect(matches('src host fd00::6', c)).toBe(false);
    expect(matches('(port 22 or port 443) and not src port 443', c)).toBe(true);
    expect(matches('portrange 400-500', c)).toBe(true);
    expect(matches('src and dst net 10.0.0.0/8', b)).toBe(false);
    expect(matches('not not port 80', a)).toBe(true);
  });

  it('compiles structured filters with validation', () => {
    const f = compileFilter({ dstPorts: [80, [8000, 8080]], srcAddresses: ['10.0.0.0/8', 'fd00::/8'], flags: ['syn'], notFlags: ['ack'] });
    expect(evaluateFilter(f, pkt('10.9.9.9', 1, '1.1.1.1', 8001, SYN))).toBe(true);
    expect(evaluateFilter(f, pkt('10.9.9.9', 1, '1.1.1.1', 8001, SYN | ACK))).toBe(false);
    expect(evaluateFilter(f, pkt('11.9.9.9', 1, '1.1.1.1', 80, SYN))).toBe(false);
    expect(evaluateFilter(f, pkt('fd00::1', 1, 'fd00::2', 80, SYN))).toBe(true);
    expect(() => compileFilter({ ports: [70000] })).toThrow(/filter.ports: bad port '70000'/);
    expect(() => compileFilter({ srcAddresses: ['10.0.0.0/40'] })).toThrow(/prefix length/);
    expect(() => compileFilter({ flags: ['nope' as 'syn'] })).toThrow(/unknown TCP flag 'nope'/);
    expect(() => compileFilter({ prots: [1] } as never)).toThrow(/unknown filter field 'prots'/);
    const combined = compileFilter({ family: 6, expression: 'port 443' });
    expect(evaluateFilter(combined, pkt('fd00::5', 5555, 'fd00::1', 443, ACK))).toBe(true);
    expect(evaluateFilter(combined, pkt('1.1.1.1', 5555, '2.2.2.2', 443, ACK))).toBe(false);
  });
});
