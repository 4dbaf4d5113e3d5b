#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// A TCP server for the connection tests: listens on HOST PORT, names its process (comm)
// TITLE, reads everything each client sends, then closes. Prints `ready PID` when
// listening. Never connects anywhere itself.
// usage: tcp_server.js HOST PORT [TITLE]
'use strict';
const net = require('node:net');
const [host, port, title] = process.argv.slice(2);
if (title) process.title = title;
const server = net.createServer((s) => {
  s.on('error', () => {});
  s.resume();
  s.on('end', () => s.end());
});
server.listen(Number(port), host, () => process.stdout.write(`ready ${process.pid}\n`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
setTimeout(() => process.exit(3), 60000).unref();
