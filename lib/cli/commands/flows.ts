// SPDX-License-Identifier: MIT
// tcpscope flows: each new incoming TCP flow identified once from its first payload bytes
// (HTTP/1.x method, path and Host; HTTP/2 preface; TLS SNI, ALPN and version).
import { flows, FlowEvent } from '../../classify';
import type { Command } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, UsageError, counter, printSummary, writeEvent } from '../command';
import { clock, endpoint } from './tcp_common';

function text(f: FlowEvent): string {
  const from = endpoint(f.saddr, f.sport);
  const to = endpoint(f.daddr, f.dport);
  let detail = '';
  if (f.protocol === 'http1') detail = `${f.method} ${f.path ?? ''}${f.host ? ` host=${f.host}` : ''}`;
  else if (f.protocol === 'tls') detail = [f.sni ? `sni=${f.sni}` : 'no sni', f.tlsVersion, f.alpn?.length ? `alpn=${f.alpn.join(',')}` : ''].filter(Boolean).join(' ');
  else if (f.protocol === 'http2') detail = 'preface';
  else detail = `${f.capturedLen} bytes`;
  const flags = [f.truncated ? 'truncated' : '', f.malformed ? `malformed: ${f.malformed}` : ''].filter(Boolean).join(', ');
  return `${clock(f.time)} ${from} -> ${to} ${f.protocol.padEnd(7)} ${detail}${flags ? ` (${flags})` : ''}`;
}

export const flowsCommand: Command = {
  name: 'flows',
  summary: 'identify each new incoming flow once: HTTP/1.x request, HTTP/2, TLS SNI/ALPN (captures first payload bytes)',
  usage: '-i IFACE [-i IFACE] [-P PORT[,PORT]] [--capture-bytes N] [--json] [-c N] [--duration 10s]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'watch this interface (repeatable, or comma-separated)' },
    port: { type: 'string', short: 'P', multiple: true, arg: 'PORT', help: 'only flows to this local port (comma-separated list allowed)' },
    'capture-bytes': { type: 'string', arg: 'N', help: 'payload bytes read from the first data segment of each flow' },
  },
  deprecated: [{ spelling: '-p', option: 'port', warning: "-p PORT is deprecated: use -P/--port (-p will mean a PID, as in bcc's tools)" }, DEPRECATED_D],
  examples: [
    ['tcpscope flows -i eth0', 'the HTTP request line, Host, TLS SNI/ALPN of each new incoming flow'],
    ['tcpscope flows -i eth0 -P 443 --json', 'TLS flows to port 443, as NDJSON'],
  ],
  async run(ctx) {
    const interfaces = ((ctx.values['interface'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
    if (!interfaces.length) throw new UsageError('flows needs an interface: -i IFACE');
    const ports = ((ctx.values['port'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
    const capture = ctx.values['capture-bytes'] as string | undefined;
    if (capture !== undefined && !/^\d+$/.test(capture)) throw new UsageError(`bad --capture-bytes '${capture}'`);
    const stream = flows({ interfaces, ports, signal: ctx.signal, ...(capture !== undefined ? { captureBytes: Number(capture) } : {}) });
    const more = counter(ctx);
    ctx.ready(`listening on ${interfaces.join(', ')} (tc ingress), identifying new flows${ports.length ? ` to port ${ports.join(',')}` : ''}`);
    try {
      for await (const f of stream) {
        writeEvent(ctx, f, () => text(f));
        if (!more()) break;
      }
    } finally {
      const stats = stream.stats();
      stream.close();
      printSummary(ctx, stats, 'flows');
    }
    return 0;
  },
};
