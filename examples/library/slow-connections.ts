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
  await using probe = connections({ ports: [port], events: ['close'], signal: AbortSignal.timeout(seconds * 1000) });
  for await (const c of probe) {
    const durationMs = c.durationNs / 1e6;
    if (durationMs < thresholdMs) continue;
    slow.push({ peer: `${c.daddr}:${c.dport}`, process: `${c.comm}[${c.pid}]`, durationMs, bytesReceived: c.bytesReceived });
  }
  return slow;
}

if (require.main === module) {
  const [port = '8080', seconds = '10', threshold = '100'] = process.argv.slice(2);
  slowConnections(Number(port), Number(seconds), Number(threshold)).then(
    (rows) => console.table(rows),
    (e: Error) => { console.error(e.message); process.exit(1); },
  );
}
