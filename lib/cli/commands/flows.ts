// SPDX-License-Identifier: MIT
// tcpscope flows: each new incoming TCP flow identified once from its first payload bytes
// (HTTP/1.x method, path and Host; HTTP/2 preface; TLS SNI, ALPN and version).
import { flows, FlowEvent } from '../../classify';
import type { Command } from '../command';
import { STREAM_OPTIONS, UsageError, counter, printSummary, writeEvent } from '../command';
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
  return `${clock(f.ts)} ${from} -> ${to} ${f.protocol.padEnd(7)} ${detail}${flags ? ` (${flags})` : ''}`;
}

export const flowsCommand: Command = {
  name: 'flows',
  summary: 'identify each new incoming flow once: HTTP/1.x request, HTTP/2, TLS SNI/ALPN (captures first payload bytes)',
  usage: '-i IFACE [-i IFACE] [-p PORT[,PORT]] [--capture-bytes N] [--json] [-c N] [-d 10s]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true },
    port: { type: 'string', short: 'p', multiple: true },
    'capture-bytes': { type: 'string' },
  },
  async run(ctx) {
    const interfaces = ((ctx.values['interface'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
    if (!interfaces.length) throw new UsageError('flows needs an interface: -i IFACE');
    const ports = ((ctx.values['port'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).filter(Boolean);
    const capture = ctx.values['capture-bytes'] as string | undefined;
    if (capture !== undefined && !/^\d+$/.test(capture)) throw new UsageError(`bad --capture-bytes '${capture}'`);
    const stream = flows({ interfaces, ports, signal: ctx.signal, ...(capture !== undefined ? { captureBytes: Number(capture) } : {}) });
    const more = counter(ctx);
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
