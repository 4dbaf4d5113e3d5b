// SPDX-License-Identifier: MIT
// End to end with a real Prometheus server (Debian's `prometheus`): it scrapes our /metrics
// every second, and the values we fed come back through its query API.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TcpscopeMetrics, startPrometheusServer, PrometheusServer } from '../lib/export';
import { eventually } from './helpers/bpf';
import { unusedPort as freePort } from './helpers/listen';

const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => fs.existsSync(p));

/** Skips without a prometheus binary, except in CI where setup-debian.sh installs it. */
function prometheusAvailable(): boolean {
  if (PROMETHEUS) return true;
  const reason = 'no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN)';
  if (process.env['CI'] || process.env['TCPSCOPE_REQUIRE_BPF'] === '1') throw new Error(`export-prometheus: ${reason}`);
  console.warn(`[skip] export-prometheus: ${reason}`);
  return false;
}


interface QueryResult {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

describe.skipIf(!prometheusAvailable())('real Prometheus scrapes /metrics', () => {
  const metrics = new TcpscopeMetrics();
  let exporter: PrometheusServer;
  let prom: ChildProcess | undefined;
  let promUrl: string;
  let dir: string;
  let promLog = '';

  beforeAll(async () => {
    exporter = await startPrometheusServer(metrics, { port: 0, host: '127.0.0.1' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-prom-'));
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: tcpscope',
      '    scrape_interval: 1s',
      '    scrape_timeout: 900ms',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${exporter.port}']`,
      '',
    ].join('\n'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prom = spawn(PROMETHEUS!, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout!.on('data', (d: Buffer) => { promLog += d.toString(); });
    prom.stderr!.on('data', (d: Buffer) => { promLog += d.toString(); });
    await eventually(async () => {
      if (prom!.exitCode !== null) throw new Error(`prometheus exited (${prom!.exitCode}):\n${promLog.slice(-2000)}`);
      try {
        return (await fetch(`${promUrl}/-/ready`)).ok;
      } catch {
        return false;
      }
    }, 20_000, 'prometheus ready');
  }, 40_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      const timer = setTimeout(() => prom!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await exporter?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<QueryResult['data']['result']> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as QueryResult;
    if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
    return body.data.result;
  }

  /** Waits until Prometheus has scraped `expr` with value `want`. */
  async function expectValue(expr: string, want: number): Promise<void> {
    let last: unknown;
    await eventually(async () => {
      const result = await query(expr);
      last = result.map((r) => r.value[1]);
      return result.length === 1 && Number(result[0]!.value[1]) === want;
    }, 15_000, `${expr} == ${want} (last: ${JSON.stringify(last)})`);
  }

  it('scrapes the target and returns the values we fed', async () => {
    for (let i = 0; i < 7; i++) metrics.observeConnection({ type: 'open', direction: 'passive', sport: 443, dport: 50000 + i });
    metrics.observeReset({ type: 'sent', reason: 'NO_SOCKET' });
    metrics.observeDrop({ type: 'drop', reason: 'TCP_CSUM' });
    metrics.observeDrop({ type: 'drop', reason: 'TCP_CSUM' });
    metrics.observeRtt({ srttUs: 50 });
    metrics.observeRtt({ srttUs: 3000 });
    metrics.observeRtt({ srttUs: 3000 });
    metrics.observeAlert({ kind: 'syn_flood', state: 'raised' });
    metrics.attachProbe('connections', { stats: () => ({ received: 123, lost: 4, lossCounted: true }) });

    await expectValue('up{job="tcpscope"}', 1);
    await expectValue('tcpscope_connections_opened_total{direction="passive",port="443"}', 7);
    await expectValue('tcpscope_resets_total{direction="sent",reason="NO_SOCKET"}', 1);
    await expectValue('sum(tcpscope_drops_total{reason="TCP_CSUM"})', 2);
    await expectValue('tcpscope_rtt_seconds_count', 3);
    await expectValue('tcpscope_rtt_seconds_bucket{le="0.000064"}', 1);
    await expectValue('tcpscope_rtt_seconds_bucket{le="+Inf"}', 3);
    await expectValue('tcpscope_alerts_active{kind="syn_flood"}', 1);
    await expectValue('tcpscope_ringbuf_lost_total{probe="connections"}', 4);
    // The histogram is usable as one: the median of {50 µs, 3 ms, 3 ms} lies in (2.048, 4.096] ms.
    const [median] = await query('histogram_quantile(0.5, tcpscope_rtt_seconds_bucket)');
    expect(Number(median!.value[1])).toBeGreaterThan(0.002048);
    expect(Number(median!.value[1])).toBeLessThanOrEqual(0.004096);
  }, 60_000);

  it('evaluates every query of the Grafana dashboard without error', async () => {
    interface Panel { title: string; targets?: Array<{ expr: string }>; panels?: Panel[] }
    const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
    const dash = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'deploy', 'grafana', 'tcpscope.json'), 'utf8')) as { panels: Panel[] };
    const failures: string[] = [];
    for (const panel of flat(dash.panels)) {
      for (const t of panel.targets ?? []) {
        // Grafana's variables as Grafana would expand them.
        const expr = t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await res.json()) as { status: string; error?: string };
        if (body.status !== 'success') failures.push(`${panel.title}: ${expr}: ${body.error}`);
      }
    }
    expect(failures).toEqual([]);
  }, 30_000);

  it('sees later increments on the next scrape', async () => {
    metrics.observeConnection({ type: 'open', direction: 'passive', sport: 443, dport: 60000 });
    await expectValue('tcpscope_connections_opened_total{direction="passive",port="443"}', 8);
  }, 30_000);
});
