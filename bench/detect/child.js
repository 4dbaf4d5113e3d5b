// SPDX-License-Identifier: MIT
// The detector under test, in its own process (as `tcpscope detect` runs): detect() with
// its defaults from the tree given, alerts as JSON lines on stdout with the time they
// reached this process. SIGUSR1 restarts the event-loop delay histogram (the flood
// starts); SIGTERM prints the final figures and exits.
'use strict';
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const [root, iface] = process.argv.slice(2);
const { detect } = require(path.join(root, 'dist', 'lib', 'detect'));
const d = detect({ interfaces: [iface] });
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
process.on('SIGUSR1', () => eld.reset());
process.on('SIGTERM', () => {
  eld.disable();
  const s = d.stats();
  out({ type: 'final', eld: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 }, stats: s });
  d.close();
  process.exit(0);
});
(async () => {
  for await (const a of d) {
    out({ type: 'alert', receivedAt: Date.now(), at: a.at.getTime(), kind: a.kind, state: a.state, key: a.key, synRate: a.evidence['synRate'], summary: a.summary });
  }
})();
out({ type: 'ready' });
