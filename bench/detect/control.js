// SPDX-License-Identifier: MIT
// The event-loop delay of an idle Node process during the same flood: what the machine's
// load alone costs a process's timers (the detector's figure is read against it).
// SIGUSR1 restarts the histogram; SIGTERM prints it and exits.
'use strict';
const { monitorEventLoopDelay } = require('node:perf_hooks');

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
process.on('SIGUSR1', () => eld.reset());
process.on('SIGTERM', () => {
  eld.disable();
  process.stdout.write(JSON.stringify({ type: 'final', eld: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 } }) + '\n');
  process.exit(0);
});
process.stdout.write(JSON.stringify({ type: 'ready' }) + '\n');
setInterval(() => {}, 1 << 30);
