// SPDX-License-Identifier: MIT
// Library example: report connections to a local service that took longer than a threshold,
// with the process that owned them and their RTT, for a given time.
//
//   sudo node dist/examples/library/slow-connections.js 8080 10 100
//
// (port, seconds to run, threshold in ms)
import { connections } from '../../lib';

export interface SlowConnection {
  peer: string;
  process: string;
  durationMs: number;
  bytesReceived: number;
}

/** Collects closed connections on `port` that lasted at least `thresholdMs`. */
export async function slowConnections(port: number, seconds: number, thresholdMs: number): Promise<SlowConnection[]> {
  const slow: SlowConnection[] = [];
  const stop = new AbortController();
  await using probe = connections({ ports: [port], events: ['close'], signal: stop.signal });
  // The clock starts once the probe is attached: loading can take a while on a busy host.
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  for await (const c of probe) {
    const durationMs = c.durationNs / 1e6;
    if (durationMs < thresholdMs) continue;
    slow.push({ peer: `${c.daddr}:${c.dport}`, process: `${c.comm}[${c.pid}]`, durationMs, bytesReceived: c.bytesReceived });
  }
  clearTimeout(timer);
  return slow;
}

if (require.main === module) {
  const [port = '8080', seconds = '10', threshold = '100'] = process.argv.slice(2);
  slowConnections(Number(port), Number(seconds), Number(threshold)).then(
    (rows) => console.table(rows),
    (e: Error) => { console.error(e.message); process.exit(1); },
  );
}
