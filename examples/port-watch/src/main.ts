// SPDX-License-Identifier: MIT
// sudo node dist/src/main.js PORT [INTERFACE] [SECONDS]: prints each new connection to PORT
// and, at the end, what arrived for it.
import { watchPort } from './port-watch.js';

const [portArg, iface = 'lo', seconds = '10'] = process.argv.slice(2);
const port = Number(portArg);
if (!portArg || !Number.isInteger(port)) {
  console.error('usage: main.js PORT [INTERFACE] [SECONDS]');
  process.exit(2);
}
const signal = AbortSignal.timeout(Number(seconds) * 1000);
try {
  using watcher = watchPort(port, { interface: iface, signal });
  for await (const c of watcher) console.log(`${c.source} port ${c.sourcePort} -> ${c.port} (window ${c.window})`);
  const s = watcher.stats(port);
  console.log(`port ${port}: ${s?.syns ?? 0n} SYNs, ${s?.segments ?? 0n} segments, ${s?.bytes ?? 0n} bytes; ${watcher.segmentsTotal()} TCP segments on ${iface}`);
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
