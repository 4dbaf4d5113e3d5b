// SPDX-License-Identifier: MIT
// Enforcement: an XDP program (bpf/guard.bpf.c) drops or rate-limits incoming TCP from
// listed sources. Opt-in: nothing is blocked unless a caller lists it. Entries are CIDR
// prefixes in two LPM tries (IPv4, IPv6); longest prefix wins, so allow() inside a denied
// range exempts it. Entries with a time to live are expired here, in user space.
import { EventEmitter } from 'node:events';
import { BpfObject } from '../bpf/object';
import type { BpfMap } from '../bpf/map';
import { UpdateFlags } from '../bpf/map';
import { bytes as bytesCodec, encodeToBytes } from '../bpf/codec';
import { BpfError, NotSupportedError, VerifierError } from '../bpf/errors';
import os from 'node:os';
import type { Link } from '../bpf/link';
import type { Program, XdpMode } from '../bpf/program';
import type { InterfaceRef } from '../bpf/netif';
import { builtObjectPath } from '../bpf/paths';
import { AF_INET, AF_INET6, Cidr, formatAddress, parseCidr } from '../net/addr';
import { ExpiryQueue } from './expiry';

/** What happens to packets from a listed source. */
export type GuardAction = 'drop' | { ratePerSec: number; burst?: number };

export interface GuardStartOptions {
  /** Interfaces to guard (XDP on each). An empty list loads without attaching (for test runs and benchmarks). */
  interfaces: InterfaceRef | InterfaceRef[];
  /** XDP attach mode; default 'auto' (driver mode where supported, else generic). */
  mode?: XdpMode;
  /** Act only on connection attempts (SYN without ACK); established flows always pass. Default false: every TCP packet. */
  synOnly?: boolean;
  /** Capacity of each trie (IPv4, IPv6); memory is allocated per entry, not up front. Default 16,777,216. */
  maxEntries?: number;
}

export interface DenyOptions {
  /** Remove the entry after this many ms. Denying a listed prefix again keeps the later expiry (no TTL: never). */
  ttlMs?: number;
  /** Default 'drop'. A rate lets `ratePerSec` packets/s through (bursts of `burst`, default = ratePerSec) and drops the rest. */
  action?: GuardAction;
}

export interface GuardEntry {
  cidr: string;
  family: 2 | 10;
  prefixLen: number;
  action: 'drop' | 'rate' | 'allow';
  ratePerSec?: number;
  burst?: number;
  /** ms since the epoch when user space removes the entry; undefined: never. */
  expiresAt?: number;
  droppedPackets: bigint;
  droppedBytes: bigint;
  /** Let through by the token bucket (rate) or by the allow entry. */
  passedPackets: bigint;
  passedBytes: bigint;
}

export interface GuardStats {
  /** Frames the program saw on all guarded interfaces. */
  packets: bigint;
  passed: bigint;
  passedBytes: bigint;
  dropped: bigint;
  droppedBytes: bigint;
  /** TCP packets whose source matched an entry (whatever its action). */
  matched: bigint;
  /** Matched rate entries and let through by the bucket. */
  ratePassed: bigint;
  /** Entries listed now. */
  entries: number;
  /** Entries removed because their TTL ran out, since start. */
  expired: number;
}

/**
 * The object has two variants of the program (same maps): guard_xdp, whose token bucket uses
 * compare-and-swap and fetch-and-add (BPF_ATOMIC with BPF_FETCH, kernel 5.12+), and
 * guard_xdp_xadd for older kernels, which have only the atomic add without result. Kernels
 * without BPF_FETCH reject the first before verifying it, with this message.
 */
const PROGRAMS = ['guard_xdp', 'guard_xdp_xadd'] as const;
const NO_FETCH_ATOMICS = /uses reserved fields/;
/** Set once a kernel rejected guard_xdp for lack of BPF_FETCH atomics: later starts skip it. */
let xaddOnly = false;

const ACTION = { drop: 1, rate: 2, allow: 3 } as const;
const ACTION_NAME: Record<number, GuardEntry['action']> = { 1: 'drop', 2: 'rate', 3: 'allow' };
const NANO = 1_000_000_000n;
const MAX_BURST = 1_000_000_000;

interface LpmKey { prefixlen: number; addr: Uint8Array }
interface RawRule {
  action: number; prefixlen: number; rate: bigint; capacity: bigint; fill_ns: bigint; tokens: bigint; last_ns: bigint;
  dropped_packets: bigint; dropped_bytes: bigint; passed_packets: bigint; passed_bytes: bigint;
}
interface RawStats { packets: bigint; passed: bigint; passed_bytes: bigint; dropped: bigint; dropped_bytes: bigint; matched: bigint; rate_passed: bigint }

function keyOf(c: Cidr): string {
  return `${formatAddress(c.addr, c.family)}/${c.prefixLen}`;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** parseCidr, with a fast path for dotted IPv4 (bulk lists are mostly that). */
function toCidr(cidr: string | Cidr): Cidr {
  if (typeof cidr !== 'string') return cidr;
  const m = V4.exec(cidr);
  if (!m) return parseCidr(cidr);
  const prefixLen = m[5] === undefined ? 32 : Number(m[5]);
  const addr = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const octet = Number(m[i + 1]);
    if (octet > 255 || prefixLen > 32) return parseCidr(cidr); // let it explain the error
    addr[i] = octet;
  }
  if (prefixLen < 32) {
    const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
    const n = (((addr[0]! << 24) | (addr[1]! << 16) | (addr[2]! << 8) | addr[3]!) & mask) >>> 0;
    addr[0] = n >>> 24; addr[1] = (n >>> 16) & 255; addr[2] = (n >>> 8) & 255; addr[3] = n & 255;
  }
  return { family: AF_INET, addr, prefixLen, text: cidr };
}

function ruleFor(action: GuardAction | 'allow'): Pick<RawRule, 'action' | 'rate' | 'capacity' | 'fill_ns'> {
  if (action === 'drop') return { action: ACTION.drop, rate: 0n, capacity: 0n, fill_ns: 0n };
  if (action === 'allow') return { action: ACTION.allow, rate: 0n, capacity: 0n, fill_ns: 0n };
  if (typeof action !== 'object' || action === null) throw new TypeError(`guard action must be 'drop' or { ratePerSec, burst }, got ${String(action)}`);
  const { ratePerSec } = action;
  const burst = action.burst ?? Math.max(1, ratePerSec);
  if (!Number.isInteger(ratePerSec) || ratePerSec < 1 || ratePerSec > MAX_BURST) throw new TypeError(`ratePerSec must be an integer 1..${MAX_BURST}, got ${String(ratePerSec)}`);
  if (!Number.isInteger(burst) || burst < 1 || burst > MAX_BURST) throw new TypeError(`burst must be an integer 1..${MAX_BURST}, got ${String(burst)}`);
  const capacity = BigInt(burst) * NANO;
  const rate = BigInt(ratePerSec);
  return { action: ACTION.rate, rate, capacity, fill_ns: (capacity + rate - 1n) / rate };
}

/**
 * An XDP guard on one or more interfaces.
 *
 * @example
 * const guard = Guard.start({ interfaces: ['eth0'] });
 * guard.deny('203.0.113.0/24');                                   // drop
 * guard.deny('2001:db8::/32', { action: { ratePerSec: 100, burst: 200 }, ttlMs: 60_000 });
 * guard.allow('203.0.113.7');                                      // exception
 * console.log(guard.stats().dropped);
 * guard.close();
 *
 * Events: 'expire' (entry: GuardEntry) when a TTL removes an entry.
 */
export class Guard extends EventEmitter {
  readonly object: BpfObject;
  /** The loaded program: guard_xdp, or guard_xdp_xadd on kernels before 5.12. */
  readonly program: Program;
  readonly links: Link[];
  readonly interfaces: InterfaceRef[];
  private readonly v4: BpfMap<LpmKey, RawRule>;
  private readonly v6: BpfMap<LpmKey, RawRule>;
  private readonly statsMap: BpfMap<number, RawStats>;
  private readonly expiry = new ExpiryQueue<Cidr>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private count = 0;
  private expiredCount = 0;
  private closed = false;

  private constructor(object: BpfObject, program: Program, links: Link[], interfaces: InterfaceRef[]) {
    super();
    this.object = object;
    this.program = program;
    this.links = links;
    this.interfaces = interfaces;
    this.v4 = object.map<LpmKey, RawRule>('guard_v4');
    this.v6 = object.map<LpmKey, RawRule>('guard_v6');
    this.statsMap = object.map<number, RawStats>('guard_stats');
  }

  /** Loads the program and attaches it to every interface; on failure nothing stays attached. */
  static start(options: GuardStartOptions): Guard {
    const interfaces = Array.isArray(options.interfaces) ? options.interfaces : [options.interfaces];
    if (options.maxEntries !== undefined && (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)) {
      throw new TypeError(`maxEntries must be a positive integer, got ${String(options.maxEntries)}`);
    }
    for (const name of xaddOnly ? PROGRAMS.slice(1) : PROGRAMS) {
      const obj = BpfObject.open(builtObjectPath('guard'), { skipPrograms: PROGRAMS.filter((p) => p !== name) });
      try {
        if (options.maxEntries !== undefined) {
          obj.setMaxEntries('guard_v4', options.maxEntries);
          obj.setMaxEntries('guard_v6', options.maxEntries);
        }
        try {
          obj.load();
        } catch (e) {
          if (name === 'guard_xdp' && e instanceof VerifierError && NO_FETCH_ATOMICS.test(e.verifierLog)) {
            xaddOnly = true; // kernel before 5.12: take the other variant
            obj.close();
            continue;
          }
          if (name === 'guard_xdp_xadd' && e instanceof VerifierError) {
            throw new NotSupportedError(
              `guard: kernel ${os.release()} rejected the guard program (the variant for kernels without BPF_FETCH atomics, ` +
                `before 5.12); the guard needs XDP, LPM tries and atomic adds (Linux 5.10 or later): ${e.message}`,
              { errno: e.errno, code: e.code, libbpfLog: e.libbpfLog, cause: e },
            );
          }
          throw e;
        }
        obj.map<number, { flags: number; _pad: number }>('guard_config').set(0, { flags: options.synOnly ? 1 : 0, _pad: 0 });
        const prog = obj.program(name);
        const links = interfaces.map((iface) => prog.attachXdp(iface, { mode: options.mode ?? 'auto' }));
        return new Guard(obj, prog, links, interfaces);
      } catch (e) {
        obj.close();
        throw e;
      }
    }
    throw new Error('guard: no program variant to load'); // not reached: the last variant returns or throws
  }

  private trie(c: Cidr): BpfMap<LpmKey, RawRule> {
    return c.family === AF_INET6 ? this.v6 : this.v4;
  }

  private lpmKey(c: Cidr): LpmKey {
    return { prefixlen: c.prefixLen, addr: c.family === AF_INET6 ? c.addr : c.addr.subarray(0, 4) };
  }

  /** The entry for exactly this prefix: a lookup also finds covering prefixes. */
  private exact(map: BpfMap<LpmKey, RawRule>, key: LpmKey): RawRule | undefined {
    const raw = map.get(key);
    return raw && raw.prefixlen === key.prefixlen ? raw : undefined;
  }

  private requireOpen(what: string): void {
    if (this.closed) throw new Error(`guard.${what}: the guard is closed`);
  }

  private put(c: Cidr, rule: Pick<RawRule, 'action' | 'rate' | 'capacity' | 'fill_ns'>, ttlMs: number | undefined): GuardEntry {
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError(`ttlMs must be a positive number of ms, got ${String(ttlMs)}`);
    const map = this.trie(c);
    const key = this.lpmKey(c);
    const old = this.exact(map, key);
    const sameBucket = old !== undefined && old.action === rule.action && old.rate === rule.rate && old.capacity === rule.capacity;
    const value: RawRule = {
      ...rule,
      prefixlen: c.prefixLen,
      // A changed bucket starts full; an unchanged one keeps its state.
      tokens: sameBucket ? old.tokens : BigInt.asIntN(64, rule.capacity),
      last_ns: sameBucket ? old.last_ns : 0n,
      // Counters survive a change of action (increments between the read and the write are lost).
      dropped_packets: old?.dropped_packets ?? 0n,
      dropped_bytes: old?.dropped_bytes ?? 0n,
      passed_packets: old?.passed_packets ?? 0n,
      passed_bytes: old?.passed_bytes ?? 0n,
    };
    if (!sameBucket || old === undefined) map.set(key, value, UpdateFlags.ANY);
    if (old === undefined) this.count++;
    const id = keyOf(c);
    const previous = this.expiry.get(id);
    let expiresAt: number | undefined;
    if (old === undefined) expiresAt = ttlMs === undefined ? undefined : Date.now() + ttlMs;
    else if (previous === undefined || ttlMs === undefined) expiresAt = undefined; // listed for good already, or now
    else expiresAt = Math.max(previous, Date.now() + ttlMs);
    if (expiresAt === undefined) this.expiry.delete(id);
    else this.expiry.set(id, expiresAt, c);
    this.armTimer();
    return this.describe(c, value, expiresAt);
  }

  /**
   * Lists a source prefix: its TCP packets are dropped, or rate-limited with
   * `action: { ratePerSec, burst }`. Denying a listed prefix again replaces its action and
   * keeps its counters; the later expiry wins (an entry without TTL never expires).
   */
  deny(cidr: string | Cidr, options: DenyOptions = {}): GuardEntry {
    this.requireOpen('deny');
    return this.put(toCidr(cidr), ruleFor(options.action ?? 'drop'), options.ttlMs);
  }

  /**
   * Lists many prefixes with one action and TTL: the bulk path (no lookup per entry, no
   * entry objects returned). Prefixes listed already are updated as deny() would.
   */
  denyMany(cidrs: Iterable<string | Cidr>, options: DenyOptions = {}): { added: number; updated: number } {
    this.requireOpen('denyMany');
    const ttlMs = options.ttlMs;
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError(`ttlMs must be a positive number of ms, got ${String(ttlMs)}`);
    const rule = ruleFor(options.action ?? 'drop');
    const value: RawRule = {
      ...rule, prefixlen: 0, tokens: BigInt.asIntN(64, rule.capacity), last_ns: 0n,
      dropped_packets: 0n, dropped_bytes: 0n, passed_packets: 0n, passed_bytes: 0n,
    };
    const valueBytes = encodeToBytes(this.v4.valueCodec, value);
    const valueView = new DataView(valueBytes.buffer);
    const raw = {
      [AF_INET]: this.object.map<Uint8Array, Uint8Array>('guard_v4', { key: bytesCodec(this.v4.keySize), value: bytesCodec(this.v4.valueSize) }),
      [AF_INET6]: this.object.map<Uint8Array, Uint8Array>('guard_v6', { key: bytesCodec(this.v6.keySize), value: bytesCodec(this.v6.valueSize) }),
    };
    const keys = { [AF_INET]: new Uint8Array(this.v4.keySize), [AF_INET6]: new Uint8Array(this.v6.keySize) };
    const expiresAt = ttlMs === undefined ? undefined : Date.now() + ttlMs;
    let added = 0, updated = 0;
    for (const item of cidrs) {
      const c = toCidr(item);
      const key = keys[c.family];
      new DataView(key.buffer).setUint32(0, c.prefixLen, true);
      key.set(c.addr.subarray(0, c.family === AF_INET6 ? 16 : 4), 4);
      valueView.setUint32(4, c.prefixLen, true); // guard_rule.prefixlen
      try {
        raw[c.family].set(key, valueBytes, UpdateFlags.NOEXIST);
      } catch (e) {
        if (!(e instanceof BpfError) || e.code !== 'EEXIST') throw e;
        this.put(c, rule, ttlMs);
        updated++;
        continue;
      }
      this.count++;
      added++;
      if (expiresAt !== undefined) this.expiry.set(keyOf(c), expiresAt, c);
    }
    if (expiresAt !== undefined) this.armTimer();
    return { added, updated };
  }

  /** Lists a prefix as allowed: an exception inside a denied range (longest prefix wins). */
  allow(cidr: string | Cidr, options: { ttlMs?: number } = {}): GuardEntry {
    this.requireOpen('allow');
    return this.put(toCidr(cidr), ruleFor('allow'), options.ttlMs);
  }

  /** Removes an entry (whatever its action); false when it was not listed. */
  remove(cidr: string | Cidr): boolean {
    this.requireOpen('remove');
    const c = toCidr(cidr);
    this.expiry.delete(keyOf(c));
    const removed = this.trie(c).delete(this.lpmKey(c));
    if (removed) this.count--;
    return removed;
  }

  /** The entry for exactly this prefix, with its counters. */
  get(cidr: string | Cidr): GuardEntry | undefined {
    this.requireOpen('get');
    const c = toCidr(cidr);
    const raw = this.exact(this.trie(c), this.lpmKey(c));
    return raw ? this.describe(c, raw, this.expiry.get(keyOf(c))) : undefined;
  }

  /** Every entry with its counters (one kernel lookup per entry). */
  list(): GuardEntry[] {
    this.requireOpen('list');
    const out: GuardEntry[] = [];
    for (const [family, map] of [[AF_INET, this.v4], [AF_INET6, this.v6]] as const) {
      for (const [key, raw] of map) {
        const addr = new Uint8Array(16);
        addr.set(key.addr);
        const c: Cidr = { family, addr, prefixLen: key.prefixlen, text: '' };
        out.push(this.describe(c, raw, this.expiry.get(keyOf(c))));
      }
    }
    return out;
  }

  /** Totals over every CPU and entry. */
  stats(): GuardStats {
    this.requireOpen('stats');
    const perCpu = this.statsMap.getPerCpu(0) ?? [];
    const sum = (f: keyof RawStats): bigint => perCpu.reduce((a, s) => a + s[f], 0n);
    return {
      packets: sum('packets'),
      passed: sum('passed'),
      passedBytes: sum('passed_bytes'),
      dropped: sum('dropped'),
      droppedBytes: sum('dropped_bytes'),
      matched: sum('matched'),
      ratePassed: sum('rate_passed'),
      entries: this.count,
      expired: this.expiredCount,
    };
  }

  /** Entries listed now. */
  get size(): number {
    return this.count;
  }

  private describe(c: Cidr, raw: RawRule, expiresAt: number | undefined): GuardEntry {
    const action = ACTION_NAME[raw.action] ?? 'drop';
    const entry: GuardEntry = {
      cidr: keyOf(c),
      family: c.family,
      prefixLen: c.prefixLen,
      action,
      droppedPackets: raw.dropped_packets,
      droppedBytes: raw.dropped_bytes,
      passedPackets: raw.passed_packets,
      passedBytes: raw.passed_bytes,
    };
    if (action === 'rate') {
      entry.ratePerSec = Number(raw.rate);
      entry.burst = Number(raw.capacity / NANO);
    }
    if (expiresAt !== undefined) entry.expiresAt = expiresAt;
    return entry;
  }

  /** Removes entries whose TTL has passed; the timer calls it, tests may too. */
  expireNow(now = Date.now()): GuardEntry[] {
    if (this.closed) return [];
    const gone: GuardEntry[] = [];
    for (const [id, c] of this.expiry.popDue(now)) {
      void id;
      const map = this.trie(c);
      const key = this.lpmKey(c);
      const raw = this.exact(map, key);
      if (!raw) continue;
      map.delete(key);
      this.count--;
      this.expiredCount++;
      const entry = this.describe(c, raw, undefined);
      gone.push(entry);
      this.emit('expire', entry);
    }
    return gone;
  }

  private armTimer(): void {
    const next = this.expiry.next();
    if (next === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= next) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      try {
        this.expireNow();
      } catch (e) {
        if (!this.closed) this.emit('error', e);
      }
      if (!this.closed) this.armTimer();
    }, Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Detaches from every interface and frees the maps; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.object.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
