// SPDX-License-Identifier: MIT
// deploy/prometheus/tcpscope-alerts.yaml: promtool accepts the rules and its unit tests pass
// (series shaped like tcpscope's), and every metric a rule reads is one the agent exports.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { TcpscopeMetrics, createPrometheusRegistry } from '../lib/export';
import { promqlMetricNames } from './helpers/promql';

const DIR = path.resolve(__dirname, '..', 'deploy', 'prometheus');
const RULES = path.join(DIR, 'tcpscope-alerts.yaml');

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (apt-get install prometheus; scripts/setup-debian.sh does)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface Rule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }

describe('Prometheus alerting rules', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', RULES);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it('pass promtool test rules: each alert fires, and only, where it should', () => {
    const r = promtool('test', 'rules', 'tcpscope-alerts.test.yaml');
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('read only metrics tcpscope exports, and every alert has a test, a severity and a summary', async () => {
    const text = await createPrometheusRegistry(new TcpscopeMetrics()).metrics();
    const exported = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m as unknown as [string, string, string];
      for (const n of type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]) exported.add(n);
    }
    const rules = (parse(fs.readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
    const tested = fs.readFileSync(path.join(DIR, 'tcpscope-alerts.test.yaml'), 'utf8');
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const rule of rules) {
      expect(promqlMetricNames(rule.expr).filter((n) => !exported.has(n)), rule.alert).toEqual([]);
      expect(tested, rule.alert).toContain(`alertname: ${rule.alert}\n`);
      expect(['critical', 'warning', 'info'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
    }
  });
});
