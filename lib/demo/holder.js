#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Holds the demo's network namespace: started as `unshare --net node holder.js` by the
// demo, so the namespace has no name and lives exactly as long as this process. It exits
// when its standard input closes, which happens however its parent ends (SIGKILL too), and
// the kernel then destroys the namespace and the veth pair with it: nothing to clean up.
//
// Protocol, one JSON object per line each way:
//   <- {"id":1,"setup":{"ifname":"demo0","v4":"10.1.2.2/24","v6":"fd00::2/64"}}
//   <- {"id":2,"traffic":{"host":"10.1.2.1","port":18000,"connections":8,"bytes":2000}}
//   -> {"ready":true} once, then {"id":N,"ok":true} or {"id":N,"error":"..."} per request.
// Traffic goes only to the addresses the demo gives, across its own veth pair.
'use strict';
const { execFileSync } = require('node:child_process');
const net = require('node:net');
const readline = require('node:readline');

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));

const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function setup({ ifname, v4, v6 }) {
  const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });
  ip('link', 'set', 'lo', 'up');
  ip('addr', 'add', v4, 'dev', ifname);
  ip('-6', 'addr', 'add', v6, 'dev', ifname, 'nodad');
  ip('link', 'set', ifname, 'up');
}

function traffic({ host, port, connections, bytes }) {
  return new Promise((resolve, reject) => {
    let left = connections;
    const payload = Buffer.alloc(bytes, 0x61);
    const deadline = setTimeout(() => reject(new Error(`traffic to ${host}:${port} timed out`)), 15000);
    const one = () => {
      const socket = net.connect({ host, port }, () => socket.end(payload));
      socket.on('error', (e) => { clearTimeout(deadline); reject(e); });
      socket.on('close', (hadError) => {
        if (hadError) return;
        if (--left === 0) { clearTimeout(deadline); resolve(); } else one();
      });
      socket.resume();
    };
    one();
  });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let request;
  try { request = JSON.parse(line); } catch { return; }
  const { id } = request;
  Promise.resolve()
    .then(() => (request.setup ? setup(request.setup) : traffic(request.traffic)))
    .then(() => reply({ id, ok: true }), (e) => reply({ id, error: (e.stderr && e.stderr.toString().trim()) || e.message }));
});
reply({ ready: true });
