// SPDX-License-Identifier: MIT
// The agent's configuration file: which probes, detectors, guard and exporters to run.
// Every key is validated; a ConfigError names the bad one and what it should be.
import fs from 'node:fs';
import { ConfigError, validateExportersConfig } from '../export/config';
import type { ExportersConfig } from '../export/config';
import { DETECTORS, resolveThresholds } from '../detect';
import type { DetectorName, ThresholdOptions } from '../detect';
import { parseCidr } from '../net/addr';
import { DURATION_HINT, parseDuration } from '../util/duration';

export interface ServeConfig {
  /** Interfaces whose incoming traffic is watched; default: every interface that is up. */
  interfaces?: string[];
  /** Probes feeding the metrics (default: all on). */
  probes?: Partial<Record<'packets' | 'connections' | 'retransmits' | 'resets' | 'drops' | 'rtt', boolean>>;
  detect?: { enabled?: boolean; thresholds?: ThresholdOptions; detectors?: Partial<Record<DetectorName, boolean>> };
  /** Enforcement is opt-in: nothing is blocked unless enabled. */
  guard?: {
    enabled?: boolean;
    /** CIDRs denied from the start. */
    deny?: string[];
    /** Deny what `deny` lists even when it covers every address, an established peer or a default gateway. Default false. */
    force?: boolean;
    /**
     * Never denied automatically, and exempt at XDP: CIDRs, "loopback" (127.0.0.0/8, ::1)
     * and "sessions" (the peers of connections established to local listeners when serve
     * starts, the SSH session's client among them). Default ["loopback", "sessions"].
     */
    allow?: string[];
    /**
     * Deny the sources of these alert kinds automatically, for `ttl` (e.g. "10m"); at most
     * `max` such denies at once (default 1000). Allowed sources, sources with an established
     * connection and default gateways are never denied.
     */
    autoDeny?: { kinds: string[]; ttl?: string; max?: number };
    /**
     * Protect the ports of a syn_flood alert (all ports when it names none) with SYN cookies
     * past `ratePerSec` SYNs/s per port (default 1000; `synCookies: false` drops instead),
     * until no SYN has gone over the budget for `hold` (default "30s"). On by default with
     * the guard; false turns it off.
     */
    autoProtect?: false | { ratePerSec?: number; burst?: number; synCookies?: boolean; hold?: string };
  };
  exporters?: ExportersConfig;
}

export interface ResolvedServeConfig {
  interfaces: string[] | undefined;
  probes: Record<'packets' | 'connections' | 'retransmits' | 'resets' | 'drops' | 'rtt', boolean>;
  detect: { enabled: boolean; thresholds: ThresholdOptions; detectors: Partial<Record<DetectorName, boolean>> };
  guard: {
    enabled: boolean;
    deny: string[];
    force: boolean;
    allow: string[];
    autoDeny: { kinds: string[]; ttlMs: number; max: number } | undefined;
    autoProtect: { ratePerSec: number; burst: number | undefined; synCookies: boolean; holdMs: number } | undefined;
  };
  exporters: ExportersConfig;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function keys(obj: Obj, path: string, allowed: string[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new ConfigError(`${path}.${k}: unknown key (known: ${allowed.join(', ')})`);
}

function bool(v: unknown, path: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${path}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new ConfigError(`${path}: expected an array of strings`);
  return v as string[];
}

const PROBES = ['packets', 'connections', 'retransmits', 'resets', 'drops', 'rtt'] as const;

export function validateServeConfig(raw: unknown): ResolvedServeConfig {
  if (!isObj(raw)) throw new ConfigError('config: expected a JSON object');
  keys(raw, 'config', ['interfaces', 'probes', 'detect', 'guard', 'exporters']);
  const interfaces = raw['interfaces'] === undefined ? undefined : strings(raw['interfaces'], 'config.interfaces');
  const probesRaw = raw['probes'] ?? {};
  if (!isObj(probesRaw)) throw new ConfigError('config.probes: expected an object like { "rtt": false }');
  keys(probesRaw, 'config.probes', [...PROBES]);
  const probes = Object.fromEntries(PROBES.map((p) => [p, bool(probesRaw[p], `config.probes.${p}`, true)])) as ResolvedServeConfig['probes'];

  const detectRaw = raw['detect'] ?? {};
  if (!isObj(detectRaw)) throw new ConfigError('config.detect: expected an object');
  keys(detectRaw, 'config.detect', ['enabled', 'thresholds', 'detectors']);
  const thresholds = (detectRaw['thresholds'] ?? {}) as ThresholdOptions;
  try {
    resolveThresholds(thresholds);
  } catch (e) {
    throw new ConfigError(`config.detect.thresholds: ${(e as Error).message}`);
  }
  const detectorsRaw = detectRaw['detectors'] ?? {};
  if (!isObj(detectorsRaw)) throw new ConfigError('config.detect.detectors: expected an object like { "anomaly": false }');
  keys(detectorsRaw, 'config.detect.detectors', [...DETECTORS]);
  const detectors: Partial<Record<DetectorName, boolean>> = {};
  for (const d of DETECTORS) if (detectorsRaw[d] !== undefined) detectors[d] = bool(detectorsRaw[d], `config.detect.detectors.${d}`, true);

  const guardRaw = raw['guard'] ?? {};
  if (!isObj(guardRaw)) throw new ConfigError('config.guard: expected an object');
  keys(guardRaw, 'config.guard', ['enabled', 'deny', 'force', 'allow', 'autoDeny', 'autoProtect']);
  const cidrs = (key: string, fallback: string[], keywords: string[]): string[] => {
    const list = guardRaw[key] === undefined ? fallback : strings(guardRaw[key], `config.guard.${key}`);
    list.forEach((c, i) => {
      if (keywords.includes(c)) return;
      try { parseCidr(c); } catch (e) { throw new ConfigError(`config.guard.${key}[${i}]: ${(e as Error).message}${keywords.length ? ` (or one of: ${keywords.join(', ')})` : ''}`); }
    });
    return list;
  };
  const deny = cidrs('deny', [], []);
  const allow = cidrs('allow', ['loopback', 'sessions'], ['loopback', 'sessions']);
  const duration = (v: unknown, path: string, fallback: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string') throw new ConfigError(`${path}: expected a duration like "10m"`);
    const ms = parseDuration(v);
    if (ms === undefined) throw new ConfigError(`${path}: bad duration '${v}': ${DURATION_HINT}`);
    return ms;
  };
  const count = (v: unknown, path: string, fallback: number, max: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new ConfigError(`${path}: expected an integer 1..${max}, got ${JSON.stringify(v)}`);
    return v;
  };
  let autoDeny: ResolvedServeConfig['guard']['autoDeny'];
  if (guardRaw['autoDeny'] !== undefined) {
    const a = guardRaw['autoDeny'];
    if (!isObj(a)) throw new ConfigError('config.guard.autoDeny: expected { "kinds": ["port_scan"], "ttl": "10m" }');
    keys(a, 'config.guard.autoDeny', ['kinds', 'ttl', 'max']);
    const kinds = strings(a['kinds'], 'config.guard.autoDeny.kinds');
    autoDeny = { kinds, ttlMs: duration(a['ttl'], 'config.guard.autoDeny.ttl', 600_000), max: count(a['max'], 'config.guard.autoDeny.max', 1000, 1_000_000) };
  }
  let autoProtect: ResolvedServeConfig['guard']['autoProtect'];
  const p = guardRaw['autoProtect'];
  if (p !== false) {
    if (p !== undefined && !isObj(p)) throw new ConfigError('config.guard.autoProtect: expected false or { "ratePerSec": 1000, "hold": "30s" }');
    const o = p ?? {};
    keys(o, 'config.guard.autoProtect', ['ratePerSec', 'burst', 'synCookies', 'hold']);
    autoProtect = {
      ratePerSec: count(o['ratePerSec'], 'config.guard.autoProtect.ratePerSec', 1000, 1_000_000_000),
      burst: o['burst'] === undefined ? undefined : count(o['burst'], 'config.guard.autoProtect.burst', 1, 1_000_000_000),
      synCookies: bool(o['synCookies'], 'config.guard.autoProtect.synCookies', true),
      holdMs: duration(o['hold'], 'config.guard.autoProtect.hold', 30_000),
    };
  }
  let exporters: ExportersConfig;
  try {
    exporters = validateExportersConfig(raw['exporters'] ?? {});
  } catch (e) {
    throw new ConfigError(`config.${(e as Error).message.startsWith('exporters') ? '' : 'exporters: '}${(e as Error).message}`);
  }
  return {
    interfaces,
    probes,
    detect: { enabled: bool(detectRaw['enabled'], 'config.detect.enabled', true), thresholds, detectors },
    guard: { enabled: bool(guardRaw['enabled'], 'config.guard.enabled', false), deny, force: bool(guardRaw['force'], 'config.guard.force', false), allow, autoDeny, autoProtect },
    exporters,
  };
}

export function loadServeConfig(path: string): ResolvedServeConfig {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return validateServeConfig(raw);
}
