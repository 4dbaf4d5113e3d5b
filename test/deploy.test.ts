// SPDX-License-Identifier: MIT
// The deployment files agree with the code: the Grafana dashboard queries exactly the metric
// names the registry exports (and shows every one of them), the DaemonSet has the
// capabilities and mounts the probes need, and its config files pass validation.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { TcpscopeMetrics, createPrometheusRegistry, validateExportersConfig } from '../lib/export';
import { promqlMetricNames } from './helpers/promql';

const ROOT = path.resolve(__dirname, '..');
const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'tcpscope.json');
const DAEMONSET = path.join(ROOT, 'deploy', 'kubernetes', 'daemonset.yaml');

interface Panel { type: string; title: string; targets?: Array<{ expr: string }>; panels?: Panel[] }
interface Dashboard { panels: Panel[]; templating: { list: Array<{ name: string; definition?: string }> } }

function dashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Dashboard;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every metric name the registry exposes, histograms with their _bucket/_sum/_count. */
async function exportedNames(): Promise<Map<string, string[]>> {
  const text = await createPrometheusRegistry(new TcpscopeMetrics()).metrics();
  const families = new Map<string, string[]>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    families.set(name, type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]);
  }
  return families;
}

describe('PromQL metric-name extraction', () => {
  it('finds metric names and skips functions, labels, ranges and numbers', () => {
    expect(promqlMetricNames('sum by (kind, instance) (rate(tcpscope_alerts_total{state="raised",instance=~"$instance"}[$__rate_interval])) * 8')).toEqual(['tcpscope_alerts_total']);
    expect(promqlMetricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / clamp_min(b_total, 1e-9) and on(instance) up')).toEqual(['a_bucket', 'b_total', 'up']);
  });
});

describe('Grafana dashboard', () => {
  const exprs = (): string[] => {
    const d = dashboard();
    const fromPanels = allPanels(d.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const fromVariables = d.templating.list.map((v) => v.definition?.replace(/^label_values\((.*),\s*\w+\)$/, '$1')).filter((e): e is string => !!e);
    return [...fromPanels, ...fromVariables];
  };

  it('is valid JSON with unique panel ids and a Prometheus data source variable', () => {
    const d = dashboard();
    const ids = allPanels(d.panels).map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
    expect(exprs().length).toBeGreaterThan(15);
  });

  it('queries only metric names the registry exports', async () => {
    const exported = new Set([...(await exportedNames()).values()].flat());
    const unknown: string[] = [];
    for (const expr of exprs()) {
      const names = promqlMetricNames(expr);
      expect(names.length, `no metric in ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!exported.has(name)) unknown.push(`${name} (in ${expr})`);
    }
    expect(unknown).toEqual([]);
  });

  it('shows every exported metric in at least one panel', async () => {
    const used = new Set(allPanels(dashboard().panels).flatMap((p) => (p.targets ?? []).flatMap((t) => promqlMetricNames(t.expr))));
    const missing = [...(await exportedNames())].filter(([, names]) => !names.some((n) => used.has(n))).map(([family]) => family);
    expect(missing).toEqual([]);
  });
});

describe('Kubernetes DaemonSet', () => {
  interface K8sObject { kind: string; metadata: { name: string; annotations?: Record<string, string> }; data?: Record<string, string>; spec?: unknown }
  const docs = (): K8sObject[] => parseAllDocuments(fs.readFileSync(DAEMONSET, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`daemonset.yaml: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as K8sObject;
  });

  interface Container {
    name: string; args: string[]; env: Array<{ name: string; value?: string }>; ports: Array<{ containerPort: number; hostPort?: number }>;
    securityContext: { privileged?: boolean; capabilities: { add: string[]; drop?: string[] }; seccompProfile?: { type: string } };
    volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  }
  interface PodSpec { hostNetwork: boolean; containers: Container[]; volumes: Array<{ name: string; hostPath?: { path: string }; configMap?: { name: string } }> }
  const daemonSet = (): { metadata: K8sObject['metadata']; spec: { template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } } } => {
    const ds = docs().find((d) => d.kind === 'DaemonSet');
    if (!ds) throw new Error('no DaemonSet in daemonset.yaml');
    return ds as unknown as ReturnType<typeof daemonSet>;
  };

  it('runs on the host network with the BPF capabilities, not privileged', () => {
    const pod = daemonSet().spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    const c = pod.containers[0]!;
    expect(c.securityContext.privileged).not.toBe(true);
    expect(c.securityContext.capabilities.add).toEqual(expect.arrayContaining(['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_RESOURCE']));
    expect(c.securityContext.capabilities.add).not.toContain('SYS_ADMIN');
    expect(c.securityContext.capabilities.drop).toContain('ALL');
    expect(c.securityContext.seccompProfile?.type).toBe('Unconfined');
  });

  it('mounts bpffs, tracefs and the cgroup root from the host', () => {
    const pod = daemonSet().spec.template.spec;
    const c = pod.containers[0]!;
    const hostPathOf = (mountPath: string): string | undefined => {
      const mount = c.volumeMounts.find((m) => m.mountPath === mountPath);
      return pod.volumes.find((v) => v.name === mount?.name)?.hostPath?.path;
    };
    expect(hostPathOf('/sys/fs/bpf')).toBe('/sys/fs/bpf');
    expect(hostPathOf('/sys/kernel/tracing')).toBe('/sys/kernel/tracing');
    expect(hostPathOf('/sys/fs/cgroup')).toBe('/sys/fs/cgroup');
    expect(c.volumeMounts.find((m) => m.mountPath === '/sys/fs/bpf')!.readOnly).not.toBe(true); // pins are written
    expect((c.volumeMounts.find((m) => m.mountPath === '/sys/fs/bpf') as { mountPropagation?: string }).mountPropagation).toBe('HostToContainer');
    // Socket owners are seeded from the node's /proc, and interfaces created later are followed.
    expect((pod as { hostPID?: boolean }).hostPID).toBe(true);
    expect(c.args.join(' ')).toMatch(/ -i any$/);
  });

  it('is annotated for Prometheus on the port its config serves, with an OTLP env variant', () => {
    const ds = daemonSet();
    const annotations = ds.spec.template.metadata.annotations;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    const port = Number(annotations['prometheus.io/port']);
    const c = ds.spec.template.spec.containers[0]!;
    expect(c.ports.map((p) => p.containerPort)).toContain(port);
    const configMap = docs().find((d) => d.kind === 'ConfigMap')!;
    const prom = validateExportersConfig((JSON.parse(configMap.data!['config.json']!) as { exporters: unknown }).exporters);
    expect(prom.prometheus?.port).toBe(port);
    expect(annotations['prometheus.io/path']).toBe(prom.prometheus?.path ?? '/metrics');
    expect(c.args.join(' ')).toContain('/etc/tcpscope/config.json');

    // The OTEL variant: its config takes the endpoint from the env the DaemonSet sets.
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    expect(env['OTEL_EXPORTER_OTLP_ENDPOINT']).toMatch(/^http:\/\/\$\(NODE_IP\):4318$/);
    const saved = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://10.0.0.1:4318';
    try {
      const otel = validateExportersConfig((JSON.parse(configMap.data!['config-otel.json']!) as { exporters: unknown }).exporters);
      expect(otel.otlp?.url).toBe('http://10.0.0.1:4318');
    } finally {
      if (saved === undefined) delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      else process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = saved;
    }
  });

  it('the PodMonitor selects the DaemonSet\'s pods', () => {
    const pm = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'deploy', 'kubernetes', 'podmonitor.yaml'), 'utf8'))[0]!.toJS() as { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string }> } };
    const ds = docs().find((d) => d.kind === 'DaemonSet') as unknown as { spec: { selector: { matchLabels: Record<string, string> }; template: { spec: { containers: Array<{ ports: Array<{ name: string }> }> } } } };
    expect(pm.spec.selector.matchLabels).toEqual(ds.spec.selector.matchLabels);
    expect(ds.spec.template.spec.containers[0]!.ports.map((p) => p.name)).toContain(pm.spec.podMetricsEndpoints[0]!.port);
  });
});
