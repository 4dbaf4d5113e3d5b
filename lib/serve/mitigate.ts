// SPDX-License-Identifier: MIT
// serve's reaction to alerts: deny the sources of chosen alert kinds for a while, within
// limits (never an allowed address, one with an established connection or a default
// gateway; at most `max` at once), and protect the ports of a SYN flood with SYN cookies
// for as long as the flood goes over their budget. Every action is logged and counted.
import type { DetectAlert } from '../detect';
import type { Guard, GuardEntry, PortEntry } from '../guard';
import { GuardSafetyError } from '../guard/safety';
import { establishedPeers, inRanges, protectedAddresses, denyProblem, sshClient } from '../guard/safety';
import { AF_INET6, Cidr, formatAddress, parseCidr } from '../net/addr';
import type { ResolvedServeConfig } from './config';

export interface GuardActionSink {
  observeGuardAction(action: string, reason: string, count?: number): void;
  observeGuardDrop(reason: string, count?: number): void;
}

/** Most ports one alert protects one by one; past it, every port. */
const MAX_PORTS_PER_ALERT = 16;

/**
 * How often, and for how long, a newly protected port is watched for the first SYN the guard
 * answers (or drops): the log line that says the protection works, soon enough to tell the
 * alert's delay from the guard's.
 */
const FIRST_ANSWER_POLL_MS = 20;
const FIRST_ANSWER_WATCH_MS = 10_000;

/** The allow list with its keywords resolved: "loopback", "sessions" (peers of established connections and the SSH client, now). */
export function resolveAllow(list: readonly string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const item of list) {
    if (item === 'loopback') out.push(parseCidr('127.0.0.0/8'), parseCidr('::1/128'));
    else if (item === 'sessions') {
      const ssh = sshClient();
      for (const p of [...(ssh ? [ssh] : []), ...establishedPeers()]) out.push(parseCidr(`${p.address}/${p.family === AF_INET6 ? 128 : 32}`));
    } else out.push(parseCidr(item));
  }
  const seen = new Set<string>();
  return out.filter((c) => { const k = `${formatAddress(c.addr, c.family)}/${c.prefixLen}`; if (seen.has(k)) return false; seen.add(k); return true; });
}

export class Mitigation {
  readonly allow: Cidr[];
  /** Sources denied automatically so far (history, oldest first). */
  readonly autoDenied: string[] = [];
  /** Auto-denies in force (their entries' CIDRs). */
  private readonly active = new Set<string>();
  /** Protected ports (0: all) and their over-budget SYN count at the last tick. */
  private readonly ports = new Map<number, bigint>();
  private lastStats = { dropped: 0n, portDropped: 0n, cookies: 0n };
  /** Newly protected ports watched for their first answered SYN. */
  private readonly watches = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly guard: Guard,
    private readonly config: ResolvedServeConfig['guard'],
    private readonly log: (message: string) => void,
    private readonly metrics: GuardActionSink,
  ) {
    this.allow = resolveAllow(config.allow);
    for (const c of this.allow) guard.allow(c);
    guard.on('expire', (e: GuardEntry) => {
      if (!this.active.delete(e.cidr)) return;
      this.log(`guard: auto-deny of ${e.cidr} expired (dropped ${e.droppedPackets} packets)`);
    });
    guard.on('expirePort', (p: PortEntry) => {
      this.ports.delete(p.port === 'all' ? 0 : p.port);
      this.metrics.observeGuardAction('unprotect', 'calm');
      this.log(`guard: port ${p.port} no longer protected: no SYN over its budget for ${this.config.autoProtect?.holdMs ?? 0} ms (${p.cookies} SYN cookies, ${p.droppedPackets} dropped)`);
    });
  }

  /** Auto-denies in force now. */
  get activeDenies(): number {
    return this.active.size;
  }

  onAlert(alert: DetectAlert): void {
    if (alert.state !== 'raised') return;
    const auto = this.config.autoDeny;
    if (auto && auto.kinds.includes(alert.kind)) {
      for (const source of alert.evidence['sources'] as string[] | undefined ?? []) this.autoDeny(source, alert.kind, auto);
    }
    if (alert.kind === 'syn_flood' && this.config.autoProtect) {
      const ports = ((alert.evidence['ports'] as unknown[] | undefined) ?? []).filter((p): p is number => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536);
      const flooded = [...this.ports.keys()].filter((k) => k !== 0);
      if (ports.length === 0 && flooded.length > 0) {
        // An alert naming no port (listen-queue pressure: host-wide counters) while ports
        // are protected after their own alerts: those ports' floods explain it. Protecting
        // every other port would take none of their SYNs (a port's own entry does), and that
        // idle protection would lapse by itself, apart from the flood's, after the hold.
        this.log(`guard: not protecting all ports after syn_flood (${alert.key} names no port): port${flooded.length > 1 ? 's' : ''} ${flooded.join(', ')} protected already`);
        return;
      }
      const targets: Array<number | 'all'> = ports.length === 0 || ports.length > MAX_PORTS_PER_ALERT ? ['all'] : ports;
      for (const port of targets) this.protect(port);
    }
  }

  private autoDeny(source: string, kind: string, auto: NonNullable<ResolvedServeConfig['guard']['autoDeny']>): void {
    let c: Cidr;
    try { c = parseCidr(source); } catch { return; }
    const skip = (reason: string, why: string): void => {
      this.metrics.observeGuardAction('auto_deny_skipped', reason);
      this.log(`guard: not denying ${source} after ${kind}: ${why}`);
    };
    if (inRanges(source, this.allow)) return skip('allowed', 'it is in guard.allow');
    // Read now, not cached: a connection established a moment ago counts.
    if (establishedPeers().some((p) => p.address === formatAddress(c.addr, c.family))) return skip('established', 'it has an established connection to a local listener');
    const problem = denyProblem(c, protectedAddresses());
    if (problem) return skip('protected', problem);
    const key = `${formatAddress(c.addr, c.family)}/${c.prefixLen}`;
    if (!this.active.has(key) && this.active.size >= auto.max) return skip('cap', `${auto.max} auto-denies are in force already (guard.autoDeny.max)`);
    let entry: GuardEntry;
    try {
      entry = this.guard.deny(c, { ttlMs: auto.ttlMs });
    } catch (e) {
      if (e instanceof GuardSafetyError) return skip('protected', e.reason);
      throw e;
    }
    if (this.active.has(entry.cidr)) return; // in force already: the TTL was extended
    this.active.add(entry.cidr);
    this.autoDenied.push(source);
    this.metrics.observeGuardAction('auto_deny', kind);
    this.log(`guard: denied ${source} for ${auto.ttlMs / 1000} s after ${kind}`);
  }

  private protect(port: number | 'all'): void {
    const p = this.config.autoProtect!;
    const key = port === 'all' ? 0 : port;
    const entry = this.guard.protectPort(port, { ratePerSec: p.ratePerSec, ...(p.burst !== undefined ? { burst: p.burst } : {}), synCookies: p.synCookies, ttlMs: p.holdMs });
    if (this.ports.has(key)) return;
    this.ports.set(key, entry.cookies + entry.droppedPackets);
    this.metrics.observeGuardAction('protect', 'syn_flood');
    this.log(`guard: protecting port ${port} after syn_flood: ${entry.mode === 'cookie' ? 'SYN cookies' : 'SYNs dropped'} past ${entry.ratePerSec} SYN/s${entry.fallback ? ` (no cookies: ${entry.fallback})` : ''}`);
    this.watchFirstAnswer(key, entry.cookies + entry.droppedPackets);
  }

  /** Logs once the guard has answered (or dropped) a SYN over the port's budget. */
  private watchFirstAnswer(key: number, before: bigint): void {
    const started = Date.now();
    const stop = (): void => { clearInterval(this.watches.get(key)); this.watches.delete(key); };
    stop();
    const timer = setInterval(() => {
      let entry: PortEntry | undefined;
      try {
        entry = this.guard.protectedPorts().find((e) => (e.port === 'all' ? 0 : e.port) === key);
      } catch {
        return stop(); // the guard closed
      }
      if (entry === undefined) return stop(); // lifted already
      if (entry.cookies + entry.droppedPackets > before) {
        stop();
        this.log(`guard: port ${entry.port} answered: ${entry.mode === 'cookie' ? `${entry.cookies} SYN cookies sent` : `${entry.droppedPackets} SYNs dropped`} at XDP so far`);
      } else if (Date.now() - started >= FIRST_ANSWER_WATCH_MS) stop();
    }, FIRST_ANSWER_POLL_MS);
    timer.unref();
    this.watches.set(key, timer);
  }

  /** Stops the watches; call before the guard closes. */
  close(): void {
    for (const t of this.watches.values()) clearInterval(t);
    this.watches.clear();
  }

  /** Once a second: counts what the guard did, and keeps protecting ports still flooded. */
  tick(): void {
    const s = this.guard.stats();
    const denied = (s.dropped - s.portDropped) - (this.lastStats.dropped - this.lastStats.portDropped);
    if (denied > 0n) this.metrics.observeGuardDrop('deny_list', Number(denied));
    if (s.portDropped > this.lastStats.portDropped) this.metrics.observeGuardDrop('port_budget', Number(s.portDropped - this.lastStats.portDropped));
    if (s.cookies > this.lastStats.cookies) this.metrics.observeGuardAction('syn_cookie', 'port', Number(s.cookies - this.lastStats.cookies));
    this.lastStats = { dropped: s.dropped, portDropped: s.portDropped, cookies: s.cookies };
    const p = this.config.autoProtect;
    if (!p || this.ports.size === 0) return;
    for (const entry of this.guard.protectedPorts()) {
      const key = entry.port === 'all' ? 0 : entry.port;
      const over = entry.cookies + entry.droppedPackets;
      const before = this.ports.get(key);
      if (before === undefined) continue;
      this.ports.set(key, over);
      // Still flooded: the hold starts again (the alert may have cleared, its detector seeing only the budget's SYNs).
      if (over > before) this.guard.protectPort(entry.port, { ratePerSec: p.ratePerSec, ...(p.burst !== undefined ? { burst: p.burst } : {}), synCookies: p.synCookies, ttlMs: p.holdMs });
    }
  }
}
