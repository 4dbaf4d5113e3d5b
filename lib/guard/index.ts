// SPDX-License-Identifier: MIT
// Enforcement: an XDP program (bpf/guard.bpf.c) drops or rate-limits incoming TCP from
// listed sources. Opt-in: nothing is blocked unless a caller lists it. Entries are CIDR
// prefixes in two LPM tries (IPv4, IPv6); longest prefix wins, so allow() inside a denied
// range exempts it. Protected ports meet a flood that has no source to list (random
// sources): past a SYN budget per port, SYNs are answered with SYN cookies at XDP.
// Entries with a time to live are expired here, in user space.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { BpfObject } from '../bpf/object';
import type { BpfMap, PerCpuMap } from '../bpf/map';
import { UpdateFlags } from '../bpf/map';
import { bytes as bytesCodec, encodeToBytes } from '../bpf/codec';
import { BpfError, NotSupportedError, VerifierError } from '../bpf/errors';
import os from 'node:os';
import { InterfaceLinks, Link } from '../bpf/link';
import type { Program, XdpMode } from '../bpf/program';
import type { InterfaceRef } from '../bpf/netif';
import { interfaceIndex, interfaceName } from '../bpf/netif';
import type { LinkFollower } from '../net/link-watch';
import { builtObjectPath } from '../bpf/paths';
import { AF_INET, AF_INET6, Cidr, formatAddress, parseCidr } from '../net/addr';
import type { GuardConfig as RawConfig, GuardRule as RawRule, GuardStats as RawStats } from '../generated/guard';
import { ExpiryQueue } from './expiry';
import { GuardSafetyError, ProtectedAddress, SafetyIndex, protectedAddresses } from './safety';

export { GuardSafetyError } from './safety';
export type { ProtectedAddress } from './safety';

/** What happens to packets from a listed source. */
export type GuardAction = 'drop' | { ratePerSec: number; burst?: number };

export interface GuardStartOptions {
  /** Interfaces to guard (XDP on each). An empty list loads without attaching (for test runs and benchmarks). */
  interfaces: InterfaceRef | InterfaceRef[];
  /** XDP attach mode; default 'auto' (driver mode where supported, else generic; generic on veth, whose native mode loses XDP_TX frames unless its peer runs XDP too). */
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
  /**
   * Deny even a range that covers every address (0.0.0.0/0, ::/0), the peer of an
   * established connection to a local listener (the SSH session's client among them) or a
   * default gateway. Without it such a deny throws GuardSafetyError. Default false.
   */
  force?: boolean;
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

export interface PortProtectionOptions {
  /** SYNs per second (all sources together) passed to the kernel before the rest are answered or dropped. Default 1000. */
  ratePerSec?: number;
  /**
   * Bucket size. Default: the rate, and with cookies at least net.core.somaxconn + 1, so the
   * first SYNs of a flood overflow the listener's queue (any backlog is capped at somaxconn)
   * before cookies are answered: the kernel accepts cookies only on a listener that has
   * overflowed in the last two minutes.
   */
  burst?: number;
  /** Answer over-budget SYNs with SYN cookies (default), or drop them (false). Without kernel support, they are dropped: see PortEntry.fallback. */
  synCookies?: boolean;
  /** Remove the protection after this many ms (protecting again keeps the later expiry). */
  ttlMs?: number;
}

export interface PortEntry {
  /** Destination port, or 'all'. */
  port: number | 'all';
  /** What happens to SYNs over the budget. */
  mode: 'cookie' | 'drop';
  ratePerSec: number;
  burst: number;
  expiresAt?: number;
  /** SYNs within the budget, passed to the kernel. */
  passedPackets: bigint;
  /** SYNs over the budget dropped (no cookies, or a frame a cookie cannot answer: VLAN tags, IP options). */
  droppedPackets: bigint;
  /** SYNs over the budget answered with a SYN cookie. */
  cookies: bigint;
  /** Why cookies were asked for and the mode is 'drop'. */
  fallback?: string;
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
  /** SYNs from unlisted sources to a protected port. */
  portMatched: bigint;
  /** Of those: within the port's budget (passed), over it and dropped, over it and answered with a SYN cookie. */
  portPassed: bigint;
  portDropped: bigint;
  cookies: bigint;
  /** Protected ports now. */
  ports: number;
  /** Entries listed now. */
  entries: number;
  /** Entries removed because their TTL ran out, since start. */
  expired: number;
}

/**
 * The object has three variants of the program (same maps), tried in this order: guard_xdp
 * answers SYN cookies (bpf_tcp_raw_gen_syncookie_*, kernel 6.0+) and its token buckets use
 * compare-and-swap and fetch-and-add (BPF_ATOMIC with BPF_FETCH, 5.12+); guard_xdp_nocookie
 * drops what guard_xdp would answer; guard_xdp_xadd, for kernels before 5.12, has only the
 * atomic add without result. Kernels without BPF_FETCH reject a program before verifying
 * it, with NO_FETCH_ATOMICS; kernels before 6.0 do not know the cookie helpers (UNKNOWN_HELPER).
 */
const PROGRAMS = ['guard_xdp', 'guard_xdp_nocookie', 'guard_xdp_xadd'] as const;
type ProgramName = typeof PROGRAMS[number];
const NO_FETCH_ATOMICS = /uses reserved fields/;
const UNKNOWN_HELPER = /(?:invalid|unknown) func/;
/** Variants this kernel rejected, with why: later starts skip them. */
const rejected = new Map<ProgramName, string>();

const ACTION = { drop: 1, rate: 2, allow: 3, cookie: 4 } as const;
const ACTION_NAME: Record<number, GuardEntry['action']> = { 1: 'drop', 2: 'rate', 3: 'allow' };
const FLAG_SYN_ONLY = 1, FLAG_PORTS = 2;
const DEFAULT_PORT_RATE = 1000;
const NANO = 1_000_000_000n;
const MAX_BURST = 1_000_000_000;

interface LpmKey { prefixlen: number; addr: Uint8Array }

/** The smallest MTU of the interfaces, for the MSS a cookie's SYN-ACK advertises (1500 when unknown). */
function minMtu(interfaces: InterfaceRef[]): number {
  let mtu = Infinity;
  for (const i of interfaces) {
    const name = typeof i === 'number' ? interfaceName(i) : i;
    try { mtu = Math.min(mtu, Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8'))); } catch { /* gone or not a name */ }
  }
  return Number.isFinite(mtu) && mtu >= 1280 ? Math.min(mtu, 65535) : 1500;
}

/**
 * The mode 'auto' means for one interface: generic (skb) on a virtual device stacked on or
 * paired with another (veth, vlan, macvlan: its iflink is another interface), native
 * otherwise. A veth in native mode delivers XDP_TX frames (the SYN cookies' SYN-ACKs) to its
 * peer only when the peer has an XDP program of its own; the others have no native mode.
 */
function xdpModeFor(iface: InterfaceRef, mode: XdpMode): XdpMode {
  if (mode !== 'auto') return mode;
  const name = typeof iface === 'number' ? interfaceName(iface) : iface;
  try {
    const dir = `/sys/class/net/${name}`;
    const stacked = fs.readFileSync(`${dir}/iflink`, 'utf8').trim() !== fs.readFileSync(`${dir}/ifindex`, 'utf8').trim();
    return stacked && !fs.existsSync(`${dir}/device`) ? 'skb' : 'auto';
  } catch {
    return 'auto'; // not a name this process can see: let the kernel decide
  }
}

/** Why the kernel would reject the ACKs of XDP's cookies, or undefined. */
function syncookieSysctlProblem(): string | undefined {
  try {
    if (fs.readFileSync('/proc/sys/net/ipv4/tcp_syncookies', 'utf8').trim() === '0') {
      return 'net.ipv4.tcp_syncookies is 0, so the kernel would reject the ACKs of SYN cookies (set it to 1)';
    }
  } catch { /* no such sysctl: no cookies in this kernel */
    return 'this kernel has no SYN cookies (CONFIG_SYN_COOKIES)';
  }
  return undefined;
}

function somaxconn(): number {
  try {
    const n = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_BURST - 1) : 4096;
  } catch {
    return 4096;
  }
}

function portId(port: number): string {
  return `port:${port}`;
}

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

type RuleSpec = Pick<RawRule, 'action' | 'rate' | 'capacity' | 'fill_ns'>;

function bucket(action: number, ratePerSec: number, burstOption: number | undefined): RuleSpec {
  const burst = burstOption ?? Math.max(1, ratePerSec);
  if (!Number.isInteger(ratePerSec) || ratePerSec < 1 || ratePerSec > MAX_BURST) throw new TypeError(`ratePerSec must be an integer 1..${MAX_BURST}, got ${String(ratePerSec)}`);
  if (!Number.isInteger(burst) || burst < 1 || burst > MAX_BURST) throw new TypeError(`burst must be an integer 1..${MAX_BURST}, got ${String(burst)}`);
  const capacity = BigInt(burst) * NANO;
  const rate = BigInt(ratePerSec);
  return { action, rate, capacity, fill_ns: (capacity + rate - 1n) / rate };
}

function ruleFor(action: GuardAction | 'allow'): RuleSpec {
  if (action === 'drop') return { action: ACTION.drop, rate: 0n, capacity: 0n, fill_ns: 0n };
  if (action === 'allow') return { action: ACTION.allow, rate: 0n, capacity: 0n, fill_ns: 0n };
  if (typeof action !== 'object' || action === null) throw new TypeError(`guard action must be 'drop' or { ratePerSec, burst }, got ${String(action)}`);
  return bucket(ACTION.rate, action.ratePerSec, action.burst);
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
 * Protecting a port against a flood from random sources (no source to deny):
 * guard.protectPort(443, { ratePerSec: 1000, ttlMs: 60_000 }); // SYN cookies past 1000 SYN/s
 *
 * Events: 'expire' (entry: GuardEntry) when a TTL removes an entry; 'expirePort' (entry:
 * PortEntry) when one removes a port's protection.
 */

/**
 * The rule to write over `old` (source and port rules alike): a changed bucket starts full,
 * an unchanged one keeps its state; counters survive a change of action (increments between
 * the read and the write are lost).
 */
function mergeRule(rule: RuleSpec, old: RawRule | undefined, prefixlen: number): { value: RawRule; sameBucket: boolean } {
  const sameBucket = old !== undefined && old.action === rule.action && old.rate === rule.rate && old.capacity === rule.capacity;
  const value: RawRule = {
    ...rule,
    prefixlen,
    tokens: sameBucket ? old.tokens : BigInt.asIntN(64, rule.capacity),
    last_ns: sameBucket ? old.last_ns : 0n,
    dropped_packets: old?.dropped_packets ?? 0n,
    dropped_bytes: old?.dropped_bytes ?? 0n,
    passed_packets: old?.passed_packets ?? 0n,
    passed_bytes: old?.passed_bytes ?? 0n,
    cookies: old?.cookies ?? 0n,
  };
  return { value, sameBucket };
}

export class Guard extends EventEmitter implements LinkFollower {
  readonly object: BpfObject;
  /** The loaded program: guard_xdp, or guard_xdp_nocookie before 6.0, or guard_xdp_xadd before 5.12. */
  readonly program: Program;
  /** Whether protected ports can answer SYN cookies (guard_xdp loaded). */
  readonly synCookies: boolean;
  /** Why not, when they cannot. */
  readonly synCookiesUnavailable: string | undefined;
  readonly links: Link[];
  readonly interfaces: InterfaceRef[];
  private readonly v4: BpfMap<LpmKey, RawRule>;
  private readonly v6: BpfMap<LpmKey, RawRule>;
  private readonly statsMap: PerCpuMap<number, RawStats>;
  private readonly portMap: BpfMap<number, RawRule>;
  private readonly configMap: BpfMap<number, RawConfig>;
  private config: RawConfig;
  /** Protected ports (0: all) and why cookies fell back to drop. */
  private readonly portFallback = new Map<number, string | undefined>();
  private readonly expiry = new ExpiryQueue<Cidr | number>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private count = 0;
  private expiredCount = 0;
  private closed = false;
  private safety: { at: number; index: SafetyIndex } | undefined;

  /** The XDP link on each interface, and how it appears in `interfaces`, by ifindex. */
  private readonly attached: InterfaceLinks<InterfaceRef>;
  private readonly mode: XdpMode;

  private constructor(object: BpfObject, program: Program, attached: InterfaceLinks<InterfaceRef>, interfaces: InterfaceRef[], config: RawConfig, mode: XdpMode) {
    super();
    this.object = object;
    this.program = program;
    this.attached = attached;
    this.links = attached.links;
    this.interfaces = interfaces;
    this.mode = mode;
    this.config = config;
    this.synCookies = program.name === 'guard_xdp';
    this.synCookiesUnavailable = this.synCookies ? undefined : rejected.get('guard_xdp') ?? 'the SYN-cookie variant did not load';
    this.v4 = object.map<LpmKey, RawRule>('guard_v4');
    this.v6 = object.map<LpmKey, RawRule>('guard_v6');
    this.statsMap = object.perCpuMap<number, RawStats>('guard_stats');
    this.portMap = object.map<number, RawRule>('guard_ports');
    this.configMap = object.map<number, RawConfig>('guard_config');
  }

  /** Loads the program and attaches it to every interface; on failure nothing stays attached. */
  static start(options: GuardStartOptions): Guard {
    const interfaces = Array.isArray(options.interfaces) ? options.interfaces : [options.interfaces];
    if (options.maxEntries !== undefined && (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)) {
      throw new TypeError(`maxEntries must be a positive integer, got ${String(options.maxEntries)}`);
    }
    for (const name of PROGRAMS.filter((p) => !rejected.has(p))) {
      const obj = BpfObject.open(builtObjectPath('guard'), { skipPrograms: PROGRAMS.filter((p) => p !== name) });
      try {
        if (options.maxEntries !== undefined) {
          obj.setMaxEntries('guard_v4', options.maxEntries);
          obj.setMaxEntries('guard_v6', options.maxEntries);
        }
        try {
          obj.load();
        } catch (e) {
          if (name !== 'guard_xdp_xadd' && e instanceof VerifierError) {
            // Take the next variant: this kernel lacks BPF_FETCH atomics (before 5.12), the
            // cookie helpers (before 6.0), or accepts the cookie path for another reason.
            const why = NO_FETCH_ATOMICS.test(e.verifierLog) ? `kernel ${os.release()} has no BPF_FETCH atomics (Linux 5.12+), and SYN cookies at XDP need Linux 6.0+`
              : UNKNOWN_HELPER.test(e.verifierLog) ? `kernel ${os.release()} has no bpf_tcp_raw_gen_syncookie helpers (Linux 6.0+)`
              : `kernel ${os.release()} rejected ${name}: ${e.message.split('\n')[0]}`;
            rejected.set(name, why);
            if (NO_FETCH_ATOMICS.test(e.verifierLog)) rejected.set('guard_xdp_nocookie', why);
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
        const mtu = minMtu(interfaces);
        const config: RawConfig = { flags: options.synOnly ? FLAG_SYN_ONLY : 0, mss4: mtu - 40, mss6: mtu - 60 };
        obj.map<number, RawConfig>('guard_config').set(0, config);
        const prog = obj.program(name);
        const mode = options.mode ?? 'auto';
        const attached = new InterfaceLinks<InterfaceRef>();
        for (const iface of interfaces) attached.add(interfaceIndex(iface), iface, [prog.attachXdp(iface, { mode: xdpModeFor(iface, mode) })]);
        return new Guard(obj, prog, attached, [...interfaces], config, mode);
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

  private put(c: Cidr, rule: RuleSpec, ttlMs: number | undefined): GuardEntry {
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError(`ttlMs must be a positive number of ms, got ${String(ttlMs)}`);
    const map = this.trie(c);
    const key = this.lpmKey(c);
    const old = this.exact(map, key);
    const { value, sameBucket } = mergeRule(rule, old, c.prefixLen);
    if (!sameBucket || old === undefined) map.set(key, value, UpdateFlags.ANY);
    if (old === undefined) this.count++;
    const expiresAt = this.extend(keyOf(c), c, old !== undefined, ttlMs);
    return this.describe(c, value, expiresAt);
  }

  /** Sets the expiry of a new or existing entry: the later one wins, and no TTL means never. */
  private extend(id: string, value: Cidr | number, existed: boolean, ttlMs: number | undefined): number | undefined {
    const previous = this.expiry.get(id);
    let expiresAt: number | undefined;
    if (!existed) expiresAt = ttlMs === undefined ? undefined : Date.now() + ttlMs;
    else if (previous === undefined || ttlMs === undefined) expiresAt = undefined; // listed for good already, or now
    else expiresAt = Math.max(previous, Date.now() + ttlMs);
    if (expiresAt === undefined) this.expiry.delete(id);
    else this.expiry.set(id, expiresAt, value);
    this.armTimer();
    return expiresAt;
  }

  /**
   * Addresses a deny must not cover without force. Reading them walks the kernel's socket
   * tables (/proc/net/tcp{,6}), so deny() and denyMany() reuse a list up to 5 s old; serve's
   * automatic denies read them afresh.
   */
  protectedAddresses(): readonly ProtectedAddress[] {
    return this.safetyIndex().list;
  }

  private safetyIndex(): SafetyIndex {
    const now = Date.now();
    if (!this.safety || now - this.safety.at > 5000) this.safety = { at: now, index: new SafetyIndex(protectedAddresses()) };
    return this.safety.index;
  }

  private checkSafe(c: Cidr, options: DenyOptions): void {
    if (options.force) return;
    const problem = this.safetyIndex().problem(c);
    if (problem) throw new GuardSafetyError(keyOf(c), problem);
  }

  /**
   * Lists a source prefix: its TCP packets are dropped, or rate-limited with
   * `action: { ratePerSec, burst }`. Denying a listed prefix again replaces its action and
   * keeps its counters; the later expiry wins (an entry without TTL never expires).
   * Refuses (GuardSafetyError) a prefix covering every address, an established peer or a
   * default gateway, unless `force`.
   */
  deny(cidr: string | Cidr, options: DenyOptions = {}): GuardEntry {
    this.requireOpen('deny');
    const c = toCidr(cidr);
    const rule = ruleFor(options.action ?? 'drop');
    this.checkSafe(c, options);
    return this.put(c, rule, options.ttlMs);
  }

  /**
   * Lists many prefixes with one action and TTL: the bulk path (no lookup per entry, no
   * entry objects returned). Prefixes listed already are updated as deny() would. The
   * safety rules of deny() apply to each; the first refused prefix throws, with the
   * prefixes before it listed.
   */
  denyMany(cidrs: Iterable<string | Cidr>, options: DenyOptions = {}): { added: number; updated: number } {
    this.requireOpen('denyMany');
    const ttlMs = options.ttlMs;
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError(`ttlMs must be a positive number of ms, got ${String(ttlMs)}`);
    const rule = ruleFor(options.action ?? 'drop');
    const value: RawRule = {
      ...rule, prefixlen: 0, tokens: BigInt.asIntN(64, rule.capacity), last_ns: 0n,
      dropped_packets: 0n, dropped_bytes: 0n, passed_packets: 0n, passed_bytes: 0n, cookies: 0n,
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
    const guarded = options.force ? undefined : this.safetyIndex();
    for (const item of cidrs) {
      const c = toCidr(item);
      if (guarded) {
        const problem = guarded.problem(c);
        if (problem) {
          if (expiresAt !== undefined) this.armTimer();
          throw new GuardSafetyError(keyOf(c), problem);
        }
      }
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
    const perCpu = this.statsMap.get(0) ?? [];
    const sum = (f: keyof RawStats): bigint => perCpu.reduce((a, s) => a + s[f], 0n);
    return {
      packets: sum('packets'),
      passed: sum('passed'),
      passedBytes: sum('passed_bytes'),
      dropped: sum('dropped'),
      droppedBytes: sum('dropped_bytes'),
      matched: sum('matched'),
      ratePassed: sum('rate_passed'),
      portMatched: sum('port_matched'),
      portPassed: sum('port_passed'),
      portDropped: sum('port_dropped'),
      cookies: sum('cookies'),
      ports: this.portFallback.size,
      entries: this.count,
      expired: this.expiredCount,
    };
  }

  /**
   * Protects a destination port ('all': every port without an entry of its own) against SYN
   * floods from any source: SYNs without ACK from unlisted sources take a token from the
   * port's bucket (`ratePerSec`, all sources together) and reach the kernel while there are
   * tokens; the rest are answered with SYN cookies here, or dropped with `synCookies: false`
   * or when this kernel cannot answer them (see `fallback`). Established traffic and the
   * client's final ACK always pass: the kernel checks the cookie as it checks its own, which
   * it does for a listener that has overflowed in the last two minutes; the budget's SYNs
   * keep a flooded listener in that state. Protecting a protected port again replaces its
   * budget and keeps its counters; the later expiry wins.
   */
  protectPort(port: number | 'all', options: PortProtectionOptions = {}): PortEntry {
    this.requireOpen('protectPort');
    const key = port === 'all' ? 0 : port;
    if (!Number.isInteger(key) || key < 0 || key > 65535 || (port !== 'all' && key === 0)) throw new TypeError(`port must be 1..65535 or 'all', got ${String(port)}`);
    if (options.ttlMs !== undefined && !(Number.isFinite(options.ttlMs) && options.ttlMs > 0)) throw new TypeError(`ttlMs must be a positive number of ms, got ${String(options.ttlMs)}`);
    let fallback: string | undefined;
    let action: number = ACTION.rate;
    if (options.synCookies !== false) {
      fallback = this.synCookiesUnavailable ?? syncookieSysctlProblem();
      if (fallback === undefined) action = ACTION.cookie;
    }
    const rate = options.ratePerSec ?? DEFAULT_PORT_RATE;
    const rule = bucket(action, rate, options.burst ?? (action === ACTION.cookie ? Math.max(rate, somaxconn() + 1) : undefined));
    const old = this.portMap.get(key);
    const { value, sameBucket } = mergeRule(rule, old, 0);
    if (!sameBucket) this.portMap.set(key, value);
    this.portFallback.set(key, fallback);
    this.setPortsFlag();
    const expiresAt = this.extend(portId(key), key, old !== undefined, options.ttlMs);
    return this.describePort(key, value, expiresAt);
  }

  /** Removes a port's protection; false when it had none. */
  unprotectPort(port: number | 'all'): boolean {
    this.requireOpen('unprotectPort');
    const key = port === 'all' ? 0 : port;
    this.expiry.delete(portId(key));
    this.portFallback.delete(key);
    const removed = this.portMap.delete(key);
    this.setPortsFlag();
    return removed;
  }

  /** Protected ports with their counters. */
  protectedPorts(): PortEntry[] {
    this.requireOpen('protectedPorts');
    const out: PortEntry[] = [];
    for (const key of this.portFallback.keys()) {
      const raw = this.portMap.get(key);
      if (raw) out.push(this.describePort(key, raw, this.expiry.get(portId(key))));
    }
    return out;
  }

  private setPortsFlag(): void {
    const flags = (this.config.flags & ~FLAG_PORTS) | (this.portFallback.size > 0 ? FLAG_PORTS : 0);
    if (flags === this.config.flags) return;
    this.config = { ...this.config, flags };
    this.configMap.set(0, this.config);
  }

  private describePort(key: number, raw: RawRule, expiresAt: number | undefined): PortEntry {
    const entry: PortEntry = {
      port: key === 0 ? 'all' : key,
      mode: raw.action === ACTION.cookie ? 'cookie' : 'drop',
      ratePerSec: Number(raw.rate),
      burst: Number(raw.capacity / NANO),
      passedPackets: raw.passed_packets,
      droppedPackets: raw.dropped_packets,
      cookies: raw.cookies,
    };
    if (expiresAt !== undefined) entry.expiresAt = expiresAt;
    const fallback = this.portFallback.get(key);
    if (fallback !== undefined) entry.fallback = fallback;
    return entry;
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
      if (typeof c === 'number') {
        const raw = this.portMap.get(c);
        this.portFallback.delete(c);
        this.portMap.delete(c);
        this.setPortsFlag();
        if (raw) this.emit('expirePort', this.describePort(c, raw, undefined));
        continue;
      }
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

  /**
   * Guards one more interface (one created after the start, for `serve -i any`) with the
   * same rules. False when it is guarded already; throws when XDP cannot attach there.
   */
  addInterface(ifindex: number, name: string): boolean {
    if (this.closed || this.attached.has(ifindex)) return false;
    this.attached.add(ifindex, name, [this.program.attachXdp(ifindex, { mode: xdpModeFor(name, this.mode) })]);
    this.interfaces.push(name);
    return true;
  }

  /** Lets go of an interface that disappeared (its XDP program went with it). False when it was not guarded. */
  removeInterface(ifindex: number): boolean {
    const removed = this.attached.remove(ifindex);
    if (!removed) return false;
    const named = this.interfaces.indexOf(removed.name);
    if (named >= 0) this.interfaces.splice(named, 1);
    return true;
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
