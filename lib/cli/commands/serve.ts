// SPDX-License-Identifier: MIT
// `tcpscope serve --config FILE`: the long-running agent (probes, detectors, guard, exporters).
import { loadServeConfig, validateServeConfig } from '../../serve/config';
import { startAgent } from '../../serve/agent';
import { ConfigError } from '../../export/config';
import type { Command } from '../command';
import { DEPRECATED_D, UsageError } from '../command';
import { followInterfaces, interfaceArg } from './interfaces';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run as an agent: probes, detectors, optional guard, Prometheus/OpenTelemetry export',
  usage: '--config FILE | --prometheus PORT [-i IFACE]...',
  options: {
    config: { type: 'string', arg: 'FILE', help: 'the agent configuration (YAML or JSON; see deploy/)' },
    prometheus: { type: 'string', arg: 'PORT', help: 'without --config: serve Prometheus /metrics on this port, alerts as NDJSON on stdout' },
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'watch this interface (overrides the configuration); any: every interface, and those created later' },
    duration: { type: 'string', arg: 'DURATION', help: 'stop after this long once attached' },
  },
  deprecated: [DEPRECATED_D],
  examples: [
    ['tcpscope serve --config /etc/tcpscope/agent.yaml', 'the agent as deployed by deploy/kubernetes/daemonset.yaml'],
    ['tcpscope serve --prometheus 9464 -i eth0', 'metrics for eth0 at http://localhost:9464/metrics'],
  ],
  async run(ctx) {
    let config;
    try {
      if (typeof ctx.values['config'] === 'string') {
        config = loadServeConfig(ctx.values['config']);
      } else if (typeof ctx.values['prometheus'] === 'string') {
        config = validateServeConfig({ exporters: { prometheus: { port: Number(ctx.values['prometheus']) }, alerts: { ndjson: '-' } } });
      } else {
        throw new UsageError('serve needs --config FILE (see deploy/kubernetes/daemonset.yaml for an example) or --prometheus PORT');
      }
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message);
      throw e;
    }
    const choice = interfaceArg(ctx, 'none');
    if (choice.interfaces.length) config.interfaces = choice.interfaces;
    const agent = await startAgent(config, (m) => ctx.err.write(`tcpscope serve: ${m}\n`));
    // -i any: new interfaces join the packets probe, the detector and the guard; removed
    // ones are let go.
    if (choice.follow) followInterfaces(ctx, agent.linkFollowers);
    const where = agent.exporters.prometheus ? ` metrics at ${agent.exporters.prometheus.url}` : '';
    ctx.ready(`tcpscope serve: watching ${agent.interfaces.join(', ')}; probes ${agent.probes.join(', ')}; detect ${agent.detector ? 'on' : 'off'}; guard ${agent.guard ? 'on' : 'off'};${where}`);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await agent.close();
    ctx.err.write('tcpscope serve: stopped, everything detached\n');
    return 0;
  },
};
