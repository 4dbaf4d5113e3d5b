// SPDX-License-Identifier: MIT
// tcpscope guard: drop or rate-limit incoming TCP from listed sources, and protect ports
// against SYN floods with SYN cookies (XDP), printing counters periodically and a summary
// when stopped.
import { Guard, GuardAction, GuardEntry, GuardSafetyError, GuardStats, PortEntry } from '../../guard';
import { parseCidr, parsePort } from '../../net/addr';
import { denyProblem, protectedAddresses } from '../../guard/safety';
import type { XdpMode } from '../../bpf/program';
import type { Command } from '../command';
import { DEPRECATED_D, UsageError, parseDuration, toJson } from '../command';

function list(values: unknown): string[] {
  const raw = Array.isArray(values) ? (values as string[]) : typeof values === 'string' ? [values] : [];
  return raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function parseRate(text: string): number {
  const m = /^(\d+)(?:\/s)?$/.exec(text.trim());
  if (!m || Number(m[1]) < 1) throw new UsageError(`bad rate '${text}': expected packets per second, e.g. 100/s`);
  return Number(m[1]);
}

function bytes(n: bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}

function top(entries: GuardEntry[], n: number): GuardEntry[] {
  return entries
    .filter((e) => e.droppedPackets > 0n || e.passedPackets > 0n)
    .sort((a, b) => (b.droppedPackets > a.droppedPackets ? 1 : b.droppedPackets < a.droppedPackets ? -1 : 0))
    .slice(0, n);
}

function portText(p: PortEntry): string {
  return `  port ${String(p.port).padEnd(19)} ${`${p.mode === 'cookie' ? 'cookies' : 'drop'} past ${p.ratePerSec}/s`.padEnd(22)} passed ${p.passedPackets} cookies ${p.cookies} dropped ${p.droppedPackets}`;
}

function entryText(e: GuardEntry): string {
  const action = e.action === 'rate' ? `rate ${e.ratePerSec}/s burst ${e.burst}` : e.action;
  return `  ${e.cidr.padEnd(24)} ${action.padEnd(22)} dropped ${e.droppedPackets} (${bytes(e.droppedBytes)}) passed ${e.passedPackets}`;
}

export const guardCommand: Command = {
  name: 'guard',
  summary: 'drop or rate-limit incoming TCP from listed sources (XDP, opt-in enforcement)',
  usage: '-i IFACE (--deny CIDR[,CIDR] [--allow CIDR] [--rate N/s [--burst M]] [--ttl 60s] [--syn-only] [--force] | --protect-port PORT[,PORT|all] [--port-rate N/s] [--no-syn-cookies]) [--mode auto|native|skb] [--interval 1s] [--duration 10s] [--json]',
  options: {
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'enforce on this interface (XDP)' },
    deny: { type: 'string', multiple: true, arg: 'CIDR', help: 'drop (or rate-limit with --rate) incoming TCP from this range' },
    allow: { type: 'string', multiple: true, arg: 'CIDR', help: 'never drop this range (wins over --deny)' },
    rate: { type: 'string', arg: 'N/s', help: 'rate-limit the denied sources to N packets per second instead of dropping' },
    burst: { type: 'string', arg: 'M', help: 'burst allowed above --rate' },
    ttl: { type: 'string', arg: 'DURATION', help: 'remove the deny entries after this long' },
    'syn-only': { type: 'boolean', default: false, help: 'act on SYNs only (new connections)' },
    force: { type: 'boolean', default: false, help: 'deny even a range covering every address, an established peer or the gateway' },
    'protect-port': { type: 'string', multiple: true, arg: 'PORT', help: 'answer SYN floods to this local port (or all) with SYN cookies at XDP' },
    'port-rate': { type: 'string', arg: 'N/s', help: 'SYNs per second a protected port takes before cookies (or drops) start' },
    'no-syn-cookies': { type: 'boolean', default: false, help: 'over --port-rate, drop SYNs instead of answering with cookies' },
    mode: { type: 'string', default: 'auto', arg: 'MODE', choices: ['auto', 'native', 'skb'], help: 'XDP attach mode' },
    interval: { type: 'string', default: '1s', arg: 'DURATION', help: 'print the counters this often' },
    json: { type: 'boolean', default: false, help: 'NDJSON output' },
    duration: { type: 'string', arg: 'DURATION', help: 'stop after this long once attached' },
  },
  deprecated: [DEPRECATED_D],
  examples: [
    ['tcpscope guard -i eth0 --deny 203.0.113.0/24', 'drop incoming TCP from that range until Ctrl-C'],
    ['tcpscope guard -i eth0 --deny 0.0.0.0/0 --allow 10.0.0.0/8 --rate 100/s --syn-only', 'at most 100 new connections a second from outside 10/8'],
  ],
  async run(ctx) {
    const interfaces = list(ctx.values['interface']);
    if (!interfaces.length) throw new UsageError('guard needs an interface: -i IFACE');
    const deny = list(ctx.values['deny']);
    const allow = list(ctx.values['allow']);
    const ports = list(ctx.values['protect-port']).map((p) => {
      if (p === 'all') return 'all' as const;
      let n: number;
      try { n = parsePort(p); } catch { throw new UsageError(`bad --protect-port '${p}': expected a port 1..65535 or all`); }
      if (n === 0) throw new UsageError(`bad --protect-port '${p}': expected a port 1..65535 or all`);
      return n;
    });
    if (!deny.length && !ports.length) throw new UsageError('guard needs something to do: --deny CIDR[,CIDR] or --protect-port PORT');
    const portRate = ctx.values['port-rate'] !== undefined ? parseRate(ctx.values['port-rate'] as string) : undefined;
    if (portRate !== undefined && !ports.length) throw new UsageError('--port-rate needs --protect-port');
    const mode = ctx.values['mode'] as string;
    if (!['auto', 'native', 'skb'].includes(mode)) throw new UsageError(`bad --mode '${mode}': auto, native or skb`);
    let action: GuardAction = 'drop';
    if (ctx.values['rate'] !== undefined) {
      const ratePerSec = parseRate(ctx.values['rate'] as string);
      const burstText = ctx.values['burst'] as string | undefined;
      if (burstText !== undefined && !/^\d+$/.test(burstText)) throw new UsageError(`bad --burst '${burstText}': expected a positive integer`);
      action = burstText === undefined ? { ratePerSec } : { ratePerSec, burst: Number(burstText) };
    } else if (ctx.values['burst'] !== undefined) {
      throw new UsageError('--burst needs --rate');
    }
    const ttlMs = ctx.values['ttl'] !== undefined ? parseDuration(ctx.values['ttl'] as string) : undefined;
    const intervalMs = parseDuration(ctx.values['interval'] as string);
    if (!(intervalMs > 0)) throw new UsageError('--interval must be positive');
    const json = Boolean(ctx.values['json']);

    const force = Boolean(ctx.values['force']);
    if (!force) {
      // Refused before anything is attached.
      const guarded = protectedAddresses();
      for (const cidr of deny) {
        let problem: string | undefined;
        try { problem = denyProblem(parseCidr(cidr), guarded); } catch (e) { throw new UsageError(`bad --deny '${cidr}': ${(e as Error).message}`); }
        if (problem) throw new GuardSafetyError(cidr, problem);
      }
    }
    const guard = Guard.start({ interfaces, mode: mode as XdpMode, synOnly: Boolean(ctx.values['syn-only']) });
    try {
      for (const cidr of deny) guard.deny(cidr, ttlMs === undefined ? { action, force } : { action, ttlMs, force });
      for (const cidr of allow) guard.allow(cidr);
      for (const port of ports) {
        const p = guard.protectPort(port, { ...(portRate !== undefined ? { ratePerSec: portRate } : {}), synCookies: !ctx.values['no-syn-cookies'] });
        if (p.fallback && !json) ctx.err.write(`guard: port ${p.port}: over-budget SYNs are dropped, not answered: ${p.fallback}\n`);
      }
      guard.on('expire', (e: GuardEntry) => {
        if (json) ctx.out.write(`${toJson({ type: 'expire', ts: new Date().toISOString(), ...e })}\n`);
        else ctx.out.write(`expired ${e.cidr} (dropped ${e.droppedPackets})\n`);
      });
      ctx.ready(`guarding ${interfaces.join(', ')} (XDP): ${guard.size} entries (${action === 'drop' ? 'drop' : `rate ${action.ratePerSec}/s`}${ttlMs ? `, ttl ${ttlMs / 1000}s` : ''})${ports.length ? `, ${ports.length} protected ports` : ''}, Ctrl-C to end`);

      let last: GuardStats = guard.stats();
      const tick = (): void => {
        const s = guard.stats();
        const dDropped = s.dropped - last.dropped;
        const dPassed = s.passed - last.passed;
        const changed = top(guard.list(), 10);
        if (json) {
          ctx.out.write(`${toJson({ type: 'interval', ts: new Date().toISOString(), ...s, droppedDelta: dDropped, passedDelta: dPassed, entries: changed, protectedPorts: guard.protectedPorts() })}\n`);
        } else {
          const rate = (Number(dDropped) * 1000) / intervalMs;
          ctx.out.write(`${new Date().toISOString().slice(11, 19)} dropped ${s.dropped} (+${dDropped}, ${rate.toFixed(0)}/s, ${bytes(s.droppedBytes)}) passed ${s.passed} (+${dPassed}) entries ${s.entries}${s.ports ? ` cookies ${s.cookies} (+${s.cookies - last.cookies})` : ''}\n`);
          if (dDropped > 0n) for (const e of changed) ctx.out.write(`${entryText(e)}\n`);
        }
        last = s;
      };
      const timer = setInterval(tick, intervalMs);
      try {
        if (!ctx.signal.aborted) await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      } finally {
        clearInterval(timer);
      }
      const s = guard.stats();
      const entries = top(guard.list(), 100);
      if (json) {
        ctx.out.write(`${toJson({ type: 'summary', ...s, entries, protectedPorts: guard.protectedPorts() })}\n`);
      } else {
        ctx.out.write(`summary: dropped ${s.dropped} packets (${bytes(s.droppedBytes)}), passed ${s.passed} (${bytes(s.passedBytes)}), rate-limited passes ${s.ratePassed}, ${s.entries} entries, ${s.expired} expired\n`);
        for (const e of entries) ctx.out.write(`${entryText(e)}\n`);
        if (s.ports) ctx.out.write(`SYNs to protected ports: ${s.portPassed} passed, ${s.cookies} answered with SYN cookies, ${s.portDropped} dropped\n`);
        for (const p of guard.protectedPorts()) ctx.out.write(`${portText(p)}\n`);
      }
      return 0;
    } finally {
      guard.close();
    }
  },
};
