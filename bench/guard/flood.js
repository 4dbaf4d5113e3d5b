#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/guard/flood.js: legitimate clients during a random-source SYN flood, with and
// without tcpscope. A namespace joined by a veth (lib/net/testnet) floods an HTTP server on
// the host side with hping3 -S --flood --rand-source for --seconds, while a curl loop from the
// same namespace (another address) fetches a page, one request after the other, each given
// --timeout seconds. Modes, alternated round by round:
//   none     no tcpscope
//   watch    `tcpscope serve` watching (probes + detectors, no guard)
//   auto     `tcpscope serve` with the guard on: the syn_flood alert protects the port
//            (SYN cookies at XDP past a SYN budget); the time from the flood's start to the
//            protection is reported
//   lean     as auto, with serve's metric probes off (detectors and guard only)
//   static   the port protected before the flood (`tcpscope guard --protect-port`)
// Per mode: requests completed and failed, their latency (median, p90), the SYNs/s the
// veth received, and for auto the protection delay. The last line is JSON.
//
//   node bench/guard/flood.js [--seconds 10] [--rounds 3] [--timeout 3] [--modes none,watch,auto,lean,static]
// DEBUG_FLOOD=1 prints progress and the agent's guard log lines to stderr.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { once } = require('node:events');

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
if (!fs.existsSync(CLI)) { console.error(`${CLI} is missing: run \`node scripts/build.js\` first`); process.exit(1); }
const { createTestNet } = require(path.join(ROOT, 'dist', 'lib', 'net', 'testnet'));
const { prepareFloodNet, startSynFlood } = require(path.join(ROOT, 'dist', 'lib', 'net', 'floodnet'));

const opts = { seconds: 10, rounds: 3, timeout: 3, modes: 'none,watch,auto,static' };
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--(\w+)$/.exec(process.argv[i]);
  if (!m || !(m[1] in opts)) { console.error(`unknown option ${process.argv[i]}; options: ${Object.keys(opts).map((k) => `--${k}`).join(' ')}`); process.exit(2); }
  const v = process.argv[++i];
  opts[m[1]] = m[1] === 'modes' ? v : Number(v);
}
const MODES = opts.modes.split(',');
for (const m of MODES) if (!['none', 'watch', 'auto', 'lean', 'static'].includes(m)) { console.error(`unknown mode ${m}: none, watch, auto, lean, static`); process.exit(2); }

const debug = (m) => { if (process.env.DEBUG_FLOOD) console.error(`[${new Date().toISOString().slice(11, 23)}] ${m}`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const median = (xs) => quantile(xs, 0.5);

/** Waits until `re` appears in what `child` wrote to stderr; rejects if it exits first or after `ms`. */
function waitFor(child, re, ms, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${text.slice(-500)}`)), ms);
    child.stderr.on('data', (d) => { text += d; if (re.test(text)) { clearTimeout(t); resolve(); } });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`${what}: exited ${code}: ${text.slice(-500)}`)); });
  });
}

function rxPackets(ifname) {
  return Number(fs.readFileSync(`/sys/class/net/${ifname}/statistics/rx_packets`, 'utf8'));
}

let cleanup = () => {};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

async function main() {
  const tn = createTestNet();
  const fnet = prepareFloodNet(tn);
  const client = tn.nsV4.replace(/\.2$/, '.3');
  execFileSync('ip', ['-n', tn.ns, 'addr', 'add', `${client}/24`, 'dev', tn.nsIf]);
  const port = 20000 + (process.pid % 20000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-flood-'));
  // The server: its own process, as a real service would be.
  const server = spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('ok\\n')).listen({ port: ${port}, host: '${tn.hostV4}', backlog: 511 }, () => console.error('listening'))`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const children = [server];
  const results = Object.fromEntries(MODES.map((m) => [m, []]));
  cleanup = () => {
    for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    fnet.destroy();
    tn.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(server, /listening/, 10000, 'server');
    debug('server up');
    for (let round = 0; round < opts.rounds; round++) {
      for (const mode of MODES) {
        let agent;
        let log = '';
        if (mode === 'watch' || mode === 'auto' || mode === 'lean') {
          const probes = mode === 'lean' ? { packets: false, connections: false, retransmits: false, resets: false, drops: false, rtt: false } : {};
          const config = { interfaces: [tn.hostIf], probes, guard: { enabled: mode !== 'watch' }, exporters: { prometheus: { port: 0, host: '127.0.0.1' } } };
          const file = path.join(dir, `${mode}.json`);
          fs.writeFileSync(file, JSON.stringify(config));
          agent = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
          agent.stderr.on('data', (d) => { const now = Date.now(); log += String(d).split('\n').filter(Boolean).map((l) => `${now} ${l}\n`).join(''); });
          await waitFor(agent, /metrics at/, 30000, 'serve');
        } else if (mode === 'static') {
          agent = spawn(process.execPath, [CLI, 'guard', '-i', tn.hostIf, '--protect-port', String(port), '--interval', '60s'], { stdio: ['ignore', 'ignore', 'pipe'] });
          await waitFor(agent, /guarding/, 30000, 'guard');
        }
        if (agent) children.push(agent);
        debug(`${mode}: ready`);
        const curl = spawn('ip', ['netns', 'exec', tn.ns, 'timeout', String(opts.seconds + opts.timeout + 5), 'bash', '-c',
          `end=$(( $(date +%s%N) + ${opts.seconds} * 1000000000 )); while [ $(date +%s%N) -lt $end ]; do ` +
          `curl -s -o /dev/null --interface ${client} --max-time ${opts.timeout} -w '%{http_code} %{time_connect} %{time_total}\\n' http://${tn.hostV4}:${port}/; done`],
        { stdio: ['ignore', 'pipe', 'ignore'] });
        const curlDone = once(curl, 'exit');
        let out = '';
        curl.stdout.on('data', (d) => { out += d; });
        const rx0 = rxPackets(tn.hostIf);
        const t0 = Date.now();
        const flood = startSynFlood(tn, tn.hostV4, port, opts.seconds);
        await flood.done;
        debug('flood over');
        const floodMs = Date.now() - t0;
        const rx = rxPackets(tn.hostIf) - rx0;
        await curlDone;
        debug('curl loop over');
        let protectedAfterMs = null;
        if (agent) {
          const m = /^(\d+) .*guard: protecting port/m.exec(log);
          if (m) protectedAfterMs = Number(m[1]) - t0;
          debug(`flood started ${t0}\n${log.split('\n').filter((l) => /guard|syn_flood|alert/.test(l)).slice(0, 8).join('\n')}`);
          const exited = once(agent, 'exit');
          agent.kill('SIGINT');
          await exited;
          children.splice(children.indexOf(agent), 1);
        }
        const lines = out.trim().split('\n').filter(Boolean).map((l) => l.split(' '));
        const ok = lines.filter((l) => l[0] === '200');
        const r = {
          completed: ok.length,
          failed: lines.length - ok.length,
          latencyMs: ok.map((l) => Number(l[2]) * 1000),
          synPerSec: Math.round(rx / (floodMs / 1000)),
          protectedAfterMs,
        };
        results[mode].push(r);
        console.log(`round ${round + 1} ${mode.padEnd(6)} completed ${r.completed} failed ${r.failed} median ${median(r.latencyMs)?.toFixed(1)} ms p90 ${quantile(r.latencyMs, 0.9)?.toFixed(1)} ms, veth ${r.synPerSec} pkt/s${protectedAfterMs !== null ? `, protected after ${protectedAfterMs} ms` : ''} (load ${os.loadavg()[0].toFixed(2)})`);
        await sleep(2000); // let the half-open connections of the flood settle
      }
    }
  } finally {
    cleanup();
  }
  const summary = {};
  for (const [mode, rs] of Object.entries(results)) {
    const lat = rs.flatMap((r) => r.latencyMs);
    summary[mode] = {
      completed_median: median(rs.map((r) => r.completed)),
      failed_total: rs.reduce((a, r) => a + r.failed, 0),
      latency_ms_median: median(lat) === null ? null : +median(lat).toFixed(1),
      latency_ms_p90: quantile(lat, 0.9) === null ? null : +quantile(lat, 0.9).toFixed(1),
      veth_pkt_per_sec_median: median(rs.map((r) => r.synPerSec)),
      protected_after_ms: rs.map((r) => r.protectedAfterMs).filter((x) => x !== null),
    };
  }
  console.log(JSON.stringify({ bench: 'guard-flood', kernel: os.release(), cpus: os.cpus().length, seconds: opts.seconds, rounds: opts.rounds, loadavg_end: +os.loadavg()[0].toFixed(2), modes: summary }));
}

main().catch((e) => { console.error(e.message); process.exit(1); });
