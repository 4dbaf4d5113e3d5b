// SPDX-License-Identifier: MIT
// tcpscope detect: SYN floods, port scans, rate anomalies and sequence anomalies on the
// incoming traffic of one or more interfaces, printed as alerts (raised / cleared).
import { alertToJson } from '../../alerts/types';
import { detect, detectDelivery, Detector, DETECTORS, DetectorName, DEFAULT_THRESHOLDS, ThresholdOptions } from '../../detect';
import type { Command } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, UsageError, counter } from '../command';
import { clock } from './tcp_common';

function list(values: unknown): string[] {
  const raw = Array.isArray(values) ? (values as string[]) : typeof values === 'string' ? [values] : [];
  return raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** `synFlood.sourceRate=20` (repeatable) into threshold options. */
export function parseThresholdArgs(values: string[]): ThresholdOptions {
  const out: Record<string, Record<string, number>> = {};
  for (const v of values) {
    const m = /^(\w+)\.(\w+)=(\d+(?:\.\d+)?)$/.exec(v);
    if (!m) throw new UsageError(`bad --threshold '${v}': expected GROUP.NAME=NUMBER, e.g. synFlood.sourceRate=20 (groups: ${Object.keys(DEFAULT_THRESHOLDS).join(', ')})`);
    (out[m[1]!] ??= {})[m[2]!] = Number(m[3]);
  }
  return out as ThresholdOptions;
}

export const detectCommand: Command = {
  name: 'detect',
  summary: 'alert on SYN floods, port scans, rate anomalies and sequence anomalies',
  usage: '-i IFACE [-i IFACE]... [--json] [--threshold GROUP.NAME=N]... [--disable synFlood|portScan|anomaly|sequence] [--xdp] [-c N] [--duration DURATION]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'watch this interface (repeatable, or comma-separated)' },
    threshold: { type: 'string', short: 't', multiple: true, arg: 'GROUP.NAME=N', help: 'override one detector threshold, e.g. synFlood.sourceRate=20' },
    disable: { type: 'string', multiple: true, arg: 'DETECTOR', choices: DETECTORS, help: 'turn one detector off' },
    xdp: { type: 'boolean', default: false, help: 'read packets at XDP instead of tc ingress' },
  },
  deprecated: [DEPRECATED_D],
  examples: [
    ['tcpscope detect -i eth0', 'alerts for SYN floods, port scans, rate and sequence anomalies'],
    ['tcpscope detect -i eth0 -t synFlood.sourceRate=20 --disable anomaly --json', 'a lower SYN flood threshold, no rate anomalies, NDJSON alerts'],
  ],
  async run(ctx) {
    const interfaces = list(ctx.values['interface']);
    if (!interfaces.length) throw new UsageError('name at least one interface with -i IFACE (e.g. -i eth0)');
    const detectors: Partial<Record<DetectorName, boolean>> = {};
    for (const name of list(ctx.values['disable'])) {
      if (!DETECTORS.includes(name as DetectorName)) throw new UsageError(`bad --disable '${name}': expected one of ${DETECTORS.join(', ')}`);
      detectors[name as DetectorName] = false;
    }
    const thresholds = parseThresholdArgs(list(ctx.values['threshold']));
    let d: Detector;
    try {
      d = detect({ interfaces, thresholds, detectors, hook: ctx.values['xdp'] ? 'xdp' : 'tc', signal: ctx.signal });
    } catch (e) {
      if (e instanceof TypeError && !(e.name === 'NotFoundError')) throw new UsageError(e.message.replace(/^detect\(\): /, ''));
      throw e;
    }
    for (const u of d.unavailable) ctx.err.write(`tcpscope: ${u.reason}\n`);
    ctx.ready(`listening on ${interfaces.join(', ')} (${ctx.values['xdp'] ? 'XDP' : 'tc ingress'}), detecting, Ctrl-C to end`);
    const more = counter(ctx);
    try {
      for await (const alert of d) {
        if (ctx.values['json']) ctx.out.write(`${JSON.stringify(alertToJson(alert))}\n`);
        else ctx.out.write(`${clock(alert.at)} ${alert.state === 'raised' ? 'RAISED ' : 'CLEARED'} ${alert.kind.padEnd(16)} ${alert.summary}\n`);
        if (!more()) break;
      }
    } finally {
      d.close();
      const s = d.stats();
      const { received, lost, sampled } = detectDelivery(s);
      ctx.err.write(`${s.alerts.raised} raised, ${s.alerts.cleared} cleared; ${received} events read, ${sampled} sampled, ${lost} lost\n`);
    }
    return 0;
  },
};
