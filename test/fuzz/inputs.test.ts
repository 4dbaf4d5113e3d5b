// SPDX-License-Identifier: MIT
// Fuzzes the text and file inputs a user or a peer controls: filter expressions, pcapng
// files (written, then read back mutated) and serve/exporter configs. Each input is used
// or refused with the module's own error type, in bounded time.
import { describe, expect, it } from 'vitest';
import { FilterError, parseFilter } from '../../lib/filter/parse';
import { compileFilter } from '../../lib/filter/compile';
import { PcapngError, PcapngWriter, readPcapng } from '../../lib/pcapng';
import { ConfigError, validateExportersConfig } from '../../lib/export/config';
import { validateServeConfig } from '../../lib/serve/config';
import { SEED, fixtures, fuzz, iterations, report } from './harness';
import fs from 'node:fs';
const { mutate, inputRng } = require('./mutate.cjs') as {
  mutate: (input: Uint8Array, seed: number, index: number, kind: 'elf' | 'btf' | 'raw') => Uint8Array;
  inputRng: (seed: number, index: number) => () => number;
};

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const WORDS = [
  'host', 'net', 'port', 'portrange', 'src', 'dst', 'and', 'or', 'not', '!', '&&', '||', '(', ')', 'tcp', 'ip', 'ip6',
  'syn', 'ack', 'fin', 'rst', 'psh', 'push', 'urg', 'ece', 'cwr', 'tcp[tcpflags]', 'tcp[13]', '&', '|', '==', '=', '!=', '>', '0',
  'tcp-syn', 'tcp-ack', 'tcp-constructor', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'prototype',
  '80', '65535', '65536', '-1', '1-100', '100-1', '99999999999999999999', '10.0.0.0/8', '::1', '::/0', '0.0.0.0/0', '1.2.3.4',
  '1.2.3.4/33', 'mask', '255.255.0.0', 'http', 'ssh', 'udp', 'ether', '[', ']', 'x'.repeat(300), '1e400', '0x', '0x10',
];

const VALID_FILTERS = [
  'tcp port 80', 'src host 10.0.0.1 and dst port 22', 'not (port 22 or portrange 1000-2000)', 'syn and not ack',
  'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', 'net 192.168.0.0/16 or ip6', 'src or dst port 443', 'port 80 or 443 or 8080',
];

function filterInput(i: number): string {
  const r = inputRng(SEED + 11, i);
  const roll = r();
  if (roll > 0.6) {
    // A valid filter with a word or two swapped, dropped or doubled.
    const words = pick(r, VALID_FILTERS).split(' ');
    for (let e = 0, n = 1 + Math.floor(r() * 2); e < n; e++) {
      const at = Math.floor(r() * words.length);
      const op = r();
      if (op < 0.5) words[at] = pick(r, WORDS);
      else if (op < 0.75) words.splice(at, 1);
      else words.splice(at, 0, words[at]!);
    }
    return words.join(' ');
  }
  if (roll < 0.05) return '('.repeat(1 + Math.floor(r() * 5000)) + 'syn' + ')'.repeat(Math.floor(r() * 5000));
  if (roll < 0.1) return 'not '.repeat(1 + Math.floor(r() * 5000)) + 'syn';
  if (roll < 0.15) return Array.from({ length: 1 + Math.floor(r() * 3000) }, (_, k) => `port ${k % 65536}`).join(pick(r, [' or ', ' and ', ' || ']));
  const n = 1 + Math.floor(r() * 14);
  const parts: string[] = [];
  for (let k = 0; k < n; k++) parts.push(r() < 0.03 ? String.fromCharCode(Math.floor(r() * 0x3000)) : pick(r, WORDS));
  return parts.join(r() < 0.9 ? ' ' : '');
}

// A valid serve config touching every section; mutations replace one node with something hostile.
const BASE_CONFIG = {
  interfaces: ['lo'],
  probes: { packets: true, rtt: false },
  detect: { enabled: true, thresholds: {}, detectors: { anomaly: false } },
  guard: { enabled: false, deny: ['10.0.0.0/8'], autoDeny: { kinds: ['port_scan'], ttl: '10m' } },
  exporters: {
    prometheus: { port: 9464, host: '127.0.0.1' },
    alerts: { webhook: { url: 'http://127.0.0.1:9/hook' } },
  },
};

const HOSTILE: unknown[] = [
  null, true, 0, -1, 1e308, -1e308, 2 ** 53, 0.5, '', 'x'.repeat(100_000), '10m', '-5s', '1e400m', [], [null], {}, { __proto__: 1 },
  { constructor: {} }, 'constructor', '__proto__', ['__proto__'], '0.0.0.0/0', '::/0', 'http://169.254.169.254/', 'file:///etc/passwd',
];

function deep(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

function configInput(i: number): string {
  const r = inputRng(SEED + 12, i);
  const root = JSON.parse(JSON.stringify(BASE_CONFIG)) as Record<string, unknown>;
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    // Walk to a random node and replace (or add) a key there.
    let node: Record<string, unknown> = root;
    for (let d = 0; d < 4; d++) {
      const keys = Object.keys(node);
      const k = keys.length ? pick(r, keys) : undefined;
      const child = k === undefined ? undefined : node[k];
      if (!child || typeof child !== 'object' || r() < 0.3) break;
      node = child as Record<string, unknown>;
    }
    const keys = Object.keys(node);
    const key = r() < 0.8 && keys.length ? pick(r, keys) : pick(r, ['__proto__', 'constructor', 'toString', 'extra', 'port', 'allow']);
    const value = r() < 0.1 ? deep(1 + Math.floor(r() * 3000)) : pick(r, HOSTILE);
    // An own property even for "__proto__", as JSON.parse makes it; a copy, so no cycles.
    Object.defineProperty(node, key, { value: value === undefined ? null : JSON.parse(JSON.stringify(value)), enumerable: true, writable: true, configurable: true });
  }
  // Through JSON text, as a config file arrives (a "__proto__" key becomes an own property).
  return JSON.stringify(root);
}

describe('fuzz: filter expressions', () => {
  it('parses and compiles, or gives a FilterError', () => {
    const count = iterations('filter', 3000);
    const r = fuzz({
      target: 'filter',
      ext: 'txt',
      count,
      make: filterInput,
      bytes: (s) => s,
      run: (s) => {
        parseFilter(s);
        compileFilter(s);
      },
      expected: (e) => e instanceof FilterError,
    });
    report('filter', r, count);
    expect(r.failures).toEqual([]);
    expect(r.accepted).toBeGreaterThan(0);
    for (const file of fixtures('filter')) {
      expect(() => { try { compileFilter(fs.readFileSync(file, 'utf8')); } catch (e) { if (!(e instanceof FilterError)) throw e; } }).not.toThrow();
    }
  });

  it('prototype words are not flags and deep nesting is one clear error', () => {
    expect(() => parseFilter('constructor')).toThrow(FilterError);
    expect(() => parseFilter('__proto__')).toThrow(FilterError);
    expect(() => parseFilter('tcp[tcpflags] & tcp-constructor != 0')).toThrow(/unknown TCP flag/);
    expect(() => parseFilter('('.repeat(100_000) + 'syn' + ')'.repeat(100_000))).toThrow(/nested more than 100 levels deep/);
    expect(() => parseFilter('not '.repeat(100_000) + 'syn')).toThrow(/nested more than 100 levels deep/);
  });
});

describe('fuzz: pcapng', () => {
  it('writes what it reads back, refuses oversized options, and reads mutated files or gives a PcapngError', () => {
    const count = iterations('pcapng', 1500);
    const r = fuzz({
      target: 'pcapng',
      ext: 'pcapng',
      count,
      make: (i) => i,
      bytes: (i) => String(i),
      run: (i) => {
        const g = inputRng(SEED + 13, i);
        const ifaces = Array.from({ length: 1 + Math.floor(g() * 3) }, (_, k) => ({
          name: g() < 0.02 ? 'n'.repeat(65_536 + Math.floor(g() * 10)) : `if${k}`,
          snaplen: g() < 0.5 ? 0 : Math.floor(g() * 2000),
          ...(g() < 0.3 ? { description: 'd'.repeat(Math.floor(g() * 300)) } : {}),
        }));
        let w: PcapngWriter;
        try {
          w = new PcapngWriter(-1, { interfaces: ifaces, bufferBytes: 4096 + Math.floor(g() * 8192) });
        } catch (e) {
          if (e instanceof PcapngError && ifaces.some((f) => f.name.length > 65_535)) return;
          throw e;
        }
        const sent: { iface: number; data: Uint8Array }[] = [];
        for (let p = 0, n = Math.floor(g() * 20); p < n; p++) {
          const iface = Math.floor(g() * ifaces.length);
          const data = Uint8Array.from({ length: Math.floor(g() * (g() < 0.05 ? 20_000 : 1600)) }, () => Math.floor(g() * 256));
          w.write(iface, BigInt(Math.floor(g() * 2 ** 52)), data);
          sent.push({ iface, data });
        }
        const bytes = w.toBytes();
        const back = readPcapng(bytes);
        if (back.packets.length !== sent.length) throw new Error(`wrote ${sent.length} packets, read ${back.packets.length}`);
        back.packets.forEach((p, k) => {
          const snap = ifaces[sent[k]!.iface]!.snaplen;
          const want = snap > 0 ? sent[k]!.data.subarray(0, snap) : sent[k]!.data;
          if (p.iface !== sent[k]!.iface || Buffer.compare(p.data, want) !== 0) throw new Error(`packet ${k} differs`);
        });
        // Now the file as a hostile peer might hand it over.
        readPcapng(mutate(bytes, SEED + 14, i, 'raw'));
      },
      expected: (e) => e instanceof PcapngError,
    });
    report('pcapng', r, count);
    expect(r.failures).toEqual([]);
    expect(r.accepted).toBeGreaterThan(0);
  });
});

describe('fuzz: configs', () => {
  it('serve and exporter configs validate or give a ConfigError', () => {
    const count = iterations('config', 2000);
    const r = fuzz({
      target: 'config',
      ext: 'json',
      count,
      make: configInput,
      bytes: (s) => s,
      run: (s) => {
        const raw = JSON.parse(s) as Record<string, unknown>;
        validateServeConfig(raw);
        validateExportersConfig(raw['exporters']);
      },
      expected: (e) => e instanceof ConfigError,
    });
    report('config', r, count);
    expect(r.failures).toEqual([]);
    expect(r.accepted).toBeGreaterThan(0);
    for (const file of fixtures('config')) {
      try {
        validateServeConfig(JSON.parse(fs.readFileSync(file, 'utf8')));
      } catch (e) {
        expect(e, file).toBeInstanceOf(ConfigError);
      }
    }
  });
});
