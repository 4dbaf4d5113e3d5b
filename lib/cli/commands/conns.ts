// SPDX-License-Identifier: MIT
// tcpscope conns: one line per closed TCP connection (like tcplife), or every state
// transition with --states (like tcpstates).
import { connections, ConnectionEvent } from '../../probes/connections';
import type { Command } from '../command';
import { UsageError } from '../command';
import { FILTER_DEPRECATED, FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, streamEvents } from './tcp_common';

export const connsCommand: Command = {
  name: 'conns',
  summary: 'TCP connections with owning process: one line per close (bytes, duration), or every state change',
  usage: `[-s|--states] [--pid PID]... ${FILTER_USAGE}`,
  options: {
    ...FILTER_OPTIONS,
    states: { type: 'boolean', short: 's', default: false, help: 'print every state transition (like tcpstates) instead of one line per close (like tcplife)' },
    pid: { type: 'string', multiple: true, arg: 'PID', help: 'only connections owned by this process' },
  },
  deprecated: FILTER_DEPRECATED,
  examples: [
    ['tcpscope conns', 'one line per closed connection: pid, comm, addresses, bytes, duration'],
    ['tcpscope conns --states -P 443', 'every state change of connections on port 443'],
    ['tcpscope conns --pid 1234 --json -c 10', 'the next 10 connections of process 1234, as NDJSON'],
  ],
  async run(ctx) {
    const states = Boolean(ctx.values['states']);
    const pids = ((ctx.values['pid'] as string[] | undefined) ?? []).flatMap((p) => p.split(',')).map((p) => {
      if (!/^\d+$/.test(p) || Number(p) < 1) throw new UsageError(`bad pid '${p}'`);
      return Number(p);
    });
    const probe = openOrUsage(() => connections({
      ...filterOptions(ctx),
      events: states ? ['state'] : ['close'],
      ...(pids.length ? { pids } : {}),
    }));
    const header = states
      ? `${pad('TIME', 12)} ${pad('PID', 7)} ${pad('COMM', 16)} ${pad('LOCAL', 28)} ${pad('REMOTE', 28)} TRANSITION`
      : `${pad('PID', 7)} ${pad('COMM', 16)} ${pad('DIR', 7)} ${pad('LOCAL', 28)} ${pad('REMOTE', 28)} ${pad('RX_BYTES', 10, true)} ${pad('TX_BYTES', 10, true)} ${pad('MS', 10, true)}`;
    const text = (e: ConnectionEvent): string => states
      ? `${clock(e.time)} ${pad(e.pid || '-', 7)} ${pad(e.comm || '-', 16)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${e.oldstate} -> ${e.newstate}`
      : `${pad(e.pid || '-', 7)} ${pad(e.comm || '-', 16)} ${pad(e.direction, 7)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(e.bytesReceived, 10, true)} ${pad(e.bytesAcked, 10, true)} ${pad(e.durationNs ? (e.durationNs / 1e6).toFixed(2) : '-', 10, true)}`;
    return streamEvents(ctx, probe, { tracing: states ? 'TCP state changes (sock:inet_sock_set_state)' : 'TCP connections (sock:inet_sock_set_state)', header, text });
  },
};
