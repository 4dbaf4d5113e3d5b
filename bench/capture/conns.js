#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Many small connections: CONNECTIONS connections to HOST:PORT, PARALLEL at a time, each
// writing BYTES and closing. Run inside the bench namespace.
'use strict';
const net = require('node:net');
const [host, port, connections = '2000', bytes = '100', parallel = '32'] = process.argv.slice(2);
let started = 0, finished = 0;
const total = Number(connections);
const payload = Buffer.alloc(Number(bytes), 0x61);
const deadline = setTimeout(() => { console.error(`conns: timed out after ${finished}`); process.exit(2); }, 20000);
function one() {
  if (started >= total) return;
  started++;
  const s = net.connect({ host, port: Number(port) }, () => s.end(payload));
  s.on('error', () => {});
  s.resume();
  s.on('close', () => { if (++finished === total) { clearTimeout(deadline); process.exit(0); } else one(); });
}
for (let i = 0; i < Number(parallel); i++) one();
