#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Detection during a full-rate random-source SYN flood (hping3 -S --flood --rand-source)
// from a namespace this benchmark creates into its host-side veth. Per round, for the
// subject (this tree) and, with --baseline DIR, a baseline tree (alternating, baseline
// first): time from the flood's first packets at the interface to the first syn_flood
// alert reaching the detector process; the detector process's CPU during the flood
// (/proc/PID/stat); the alert's reported SYN rate against the interface's received
// packets per second (/sys/class/net/IF/statistics/rx_packets); the detector's event-loop
// delay during the flood (monitorEventLoopDelay, 10 ms resolution). Medians over rounds.
//
//   sudo node bench/detect/run.js [--seconds 10] [--rounds 3] [--baseline /path/to/old/tree]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const SECONDS = Number(opt('seconds', '10'));
const ROUNDS = Number(opt('rounds', '3'));
const BASELINE = opt('baseline', undefined);
if (!(SECONDS > 0 && SECONDS <= 60)) throw new Error('--seconds must be in (0, 60]');
if (!(ROUNDS >= 1 && ROUNDS <= 20)) throw new Error('--rounds must be 1..20');
const { createTestNet } = require(path.join(ROOT, 'dist', 'lib', 'net', 'testnet'));
const { prepareFloodNet, routeDevice } = require(path.join(ROOT, 'dist', 'lib', 'net', 'floodnet'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(s + '\n');
const rx = (iface) => Number(fs.readFileSync(`/sys/class/net/${iface}/statistics/rx_packets`, 'utf8'));
const TICK = os.constants ? 100 : 100; // USER_HZ
function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime
}
const median = (xs) => { const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : null; };

async function round(tn, variant, treeRoot) {
  // A fresh listener per round: the previous round's half-open backlog and SYN-ACK
  // retransmissions belong to another port.
  const server = net.createServer((s) => s.destroy());
  await new Promise((r) => server.listen(0, tn.hostV4, 128, r));
  const port = server.address().port;
  try {
    return await measure(tn, port, variant, treeRoot);
  } finally {
    server.close();
  }
}

/** A child process whose stdout is JSON lines, collected in `lines`. */
function jsonChild(args) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buf = '';
  child.stdout.on('data', (b) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
  });
  return { child, lines };
}

/** Interface rx rate over (from, to] ms, from the sampled timeline. */
function rateOver(samples, from, to) {
  let a, b;
  for (const s of samples) {
    if (s.t <= from) a = s;
    if (s.t <= to) b = s;
  }
  if (!a || !b || b.t <= a.t) return null;
  return (b.rx - a.rx) / ((b.t - a.t) / 1000);
}

async function measure(tn, port, variant, treeRoot) {
  const { child, lines } = jsonChild([path.join(__dirname, 'child.js'), treeRoot, tn.hostIf]);
  const control = jsonChild([path.join(__dirname, 'control.js')]);
  const deadline = Date.now() + 20000;
  while (!lines.some((l) => l.type === 'ready') || !control.lines.some((l) => l.type === 'ready')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${variant}: detector did not start`);
    await sleep(20);
  }
  // The interface's counter every 20 ms from before the flood (through the settling ticks:
  // an alert 0.25 s into the flood claims an interval that began before it), to compare an
  // alert's rate with the interval it claims.
  const samples = [{ t: Date.now(), rx: rx(tn.hostIf) }];
  const sampler = setInterval(() => samples.push({ t: Date.now(), rx: rx(tn.hostIf) }), 20);
  await sleep(1500); // settle: a few ticks before the flood
  const rx0 = rx(tn.hostIf);
  const flood = spawn('ip', ['netns', 'exec', tn.ns, 'hping3', '-S', '--flood', '--rand-source', '-p', String(port), tn.hostV4], { stdio: 'ignore' });
  const killer = setTimeout(() => flood.kill('SIGKILL'), (SECONDS + 10) * 1000);
  // The flood starts when the interface sees it.
  let floodStart;
  while (floodStart === undefined) {
    if (rx(tn.hostIf) - rx0 > 100) floodStart = Date.now();
    else if (Date.now() > deadline + 10000) throw new Error('the flood did not reach the interface');
    else await sleep(2);
  }
  child.kill('SIGUSR1');
  control.child.kill('SIGUSR1');
  const cpu0 = cpuTicks(child.pid);
  const rxStart = rx(tn.hostIf);
  await sleep(SECONDS * 1000);
  clearInterval(sampler);
  const cpu1 = cpuTicks(child.pid);
  const rxEnd = rx(tn.hostIf);
  const floodMs = Date.now() - floodStart;
  clearTimeout(killer);
  flood.kill('SIGKILL');
  child.kill('SIGTERM');
  control.child.kill('SIGTERM');
  await Promise.all([new Promise((r) => child.once('exit', r)), new Promise((r) => control.child.once('exit', r))]);
  const final = lines.find((l) => l.type === 'final');
  const controlFinal = control.lines.find((l) => l.type === 'final');
  const first = lines.find((l) => l.type === 'alert' && l.kind === 'syn_flood' && l.state === 'raised' && l.receivedAt >= floodStart);
  const portAlert = lines.find((l) => l.type === 'alert' && l.kind === 'syn_flood' && l.state === 'raised' && l.key === `syn_flood/port/${port}`);
  const ifaceRate = (rxEnd - rxStart) / (floodMs / 1000);
  // The rate the interface saw over the interval the alert's rate claims: the detector's
  // poll interval (250 ms) for the subject, the 5 s window for the baseline.
  const claimMs = variant === 'subject' ? 250 : 5000;
  const ifaceAtAlert = portAlert ? rateOver(samples, portAlert.at - claimMs, portAlert.at) : null;
  const r = {
    variant,
    first_alert_s: first ? (first.receivedAt - floodStart) / 1000 : null,
    first_alert_key: first ? first.key : null,
    port_alert_s: portAlert ? (portAlert.receivedAt - floodStart) / 1000 : null,
    detector_cpu_pct: ((cpu1 - cpu0) / TICK) / (floodMs / 1000) * 100,
    iface_rx_per_s: Math.round(ifaceRate),
    reported_syn_rate: portAlert ? portAlert.synRate : null,
    iface_rate_at_alert: ifaceAtAlert === null ? null : Math.round(ifaceAtAlert),
    reported_over_iface: portAlert && ifaceAtAlert ? portAlert.synRate / ifaceAtAlert : null,
    control_eld_p99_ms: controlFinal ? controlFinal.eld.p99 : null,
    eld_p99_ms: final ? final.eld.p99 : null,
    eld_max_ms: final ? final.eld.max : null,
    alerts: lines.filter((l) => l.type === 'alert').length,
    events: final ? final.stats.events : null,
    lost: final ? final.stats.lost : null,
    sampled: final ? final.stats.sampled ?? null : null,
    load: os.loadavg()[0],
  };
  log(JSON.stringify(r));
  await sleep(2000); // the half-open backlog drains before the next round
  return r;
}

(async () => {
  try { execFileSync('which', ['hping3'], { stdio: 'pipe' }); } catch { throw new Error('hping3 is needed (apt-get install hping3)'); }
  const tn = createTestNet();
  // The host answers the spoofed SYNs: those answers must stay on our veth.
  const fnet = prepareFloodNet(tn);
  const results = [];
  try {
    if (routeDevice(tn.hostV4, '198.51.100.7') !== tn.hostIf) throw new Error('answers to spoofed sources would leave the veth');
    log(`uptime: ${execFileSync('uptime').toString().trim()}`);
    for (let i = 0; i < ROUNDS; i++) {
      if (BASELINE) results.push(await round(tn, 'baseline', path.resolve(BASELINE)));
      results.push(await round(tn, 'subject', ROOT));
    }
  } finally {
    fnet.destroy();
    tn.destroy();
  }
  const summary = { benchmark: 'detect-flood', seconds: SECONDS, rounds: ROUNDS, uptime: execFileSync('uptime').toString().trim() };
  for (const variant of BASELINE ? ['baseline', 'subject'] : ['subject']) {
    const rs = results.filter((r) => r.variant === variant);
    summary[variant] = {
      first_alert_s: median(rs.map((r) => r.first_alert_s)),
      port_alert_s: median(rs.map((r) => r.port_alert_s)),
      detector_cpu_pct: median(rs.map((r) => r.detector_cpu_pct)),
      iface_rx_per_s: median(rs.map((r) => r.iface_rx_per_s)),
      reported_over_iface: median(rs.map((r) => r.reported_over_iface)),
      eld_p99_ms: median(rs.map((r) => r.eld_p99_ms)),
      control_eld_p99_ms: median(rs.map((r) => r.control_eld_p99_ms)),
      eld_max_ms: median(rs.map((r) => r.eld_max_ms)),
    };
  }
  const s = summary.subject;
  summary.targets = {
    first_alert_le_1s: s.first_alert_s !== null && s.first_alert_s <= 1.0,
    cpu_le_25pct: s.detector_cpu_pct <= 25,
    syn_rate_within_50pct: s.reported_over_iface !== null && Math.abs(s.reported_over_iface - 1) <= 0.5,
    eld_p99_le_100ms: s.eld_p99_ms !== null && s.eld_p99_ms <= 100,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
})().catch((e) => { log(`bench/detect: ${e.message}`); process.exit(1); });
