#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Makes TCP connections to host:port and writes `bytes` on each; run inside a netns made
// by the demo or a test (never aimed anywhere else).
// usage: traffic.js HOST PORT CONNECTIONS BYTES
'use strict';
const net = require('node:net');
const [host, port, connections = '1', bytes = '0'] = process.argv.slice(2);
let left = Number(connections);
const payload = Buffer.alloc(Number(bytes), 0x61);
const deadline = setTimeout(() => { console.error('traffic: timed out'); process.exit(2); }, 15000);
function one() {
  const socket = net.connect({ host, port: Number(port) }, () => {
    socket.end(payload);
  });
  socket.on('error', (e) => { console.error(`traffic: ${e.message}`); process.exit(1); });
  socket.on('close', () => {
    if (--left === 0) { clearTimeout(deadline); process.exit(0); } else one();
  });
  socket.resume();
}
one();
