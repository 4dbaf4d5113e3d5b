#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/guard/flood.js: legitimate clients during a random-source SYN flood, with and
// without tcpscope. Two namespaces joined by a veth: the server's (an HTTP server with a
// small listen backlog; its SYN-cookie and backlog sysctls set there only) and the
// clients' (lib/net/testnet's namespace), from which hping3 -S --flood --rand-source floods
// the server's port for --seconds while curl, from another address, starts --rate requests
// a second, each given --timeout seconds. Modes, alternated round by round, identical but
// for tcpscope:
//   none     no tcpscope
//   watch    `tcpscope serve` watching (probes + detectors, no guard)
//   auto     `tcpscope serve` with the guard on: the syn_flood alert protects the port
//            (SYN cookies at XDP past a SYN budget)
//   lean     as auto, with serve's metric probes off (detectors and guard only)
//   static   the port protected before the flood (`tcpscope guard --protect-port`)
//   base-watch, base-auto   watch and auto with the tcpscope of --baseline DIR (another
//            tree, built), for before/after figures in one run
// serve and guard run inside the server's namespace, as on a real server. Per mode:
// requests started, connected and completed, connect time (p50, p99), the SYNs/s the veth
// carried, the server's listen-queue counters, and for auto/lean the delays from the flood's
// start to the protection and to the first SYN the guard answered. The last line is JSON.
//
//   node bench/guard/flood.js [--seconds 8] [--rounds 3] [--modes none,watch,auto]
//        [--rate 10] [--timeout 3] [--backlog 64] [--syncookies 1] [--bpf-stats 0] [--baseline DIR]
// --bpf-stats 1 also reports, per round with an agent, each of its BPF programs' run count
// and kernel time over the flood (kernel.bpf_stats_enabled on for the run, restored after)
// and the agent's own CPU (utime + stime).
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

const opts = { seconds: 8, rounds: 3, timeout: 3, rate: 10, backlog: 64, syncookies: 1, bpfStats: 0, modes: 'none,watch,auto', baseline: '' };
const LIMITS = { seconds: [1, 120], rounds: [1, 20], timeout: [1, 30], rate: [1, 50], backlog: [1, 65535], syncookies: [0, 2], bpfStats: [0, 1] };
const flag = (k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--([\w-]+)$/.exec(process.argv[i]);
  if (m) m[1] = m[1].replace(/-(\w)/g, (_, c) => c.toUpperCase());
  if (!m || !(m[1] in opts)) { console.error(`unknown option ${process.argv[i]}; options: ${Object.keys(opts).map(flag).join(' ')}`); process.exit(2); }
  const v = process.argv[++i];
  if (m[1] === 'modes' || m[1] === 'baseline') { opts[m[1]] = v ?? ''; continue; }
  const n = Number(v);
  const [lo, hi] = LIMITS[m[1]];
  if (!Number.isInteger(n) || n < lo || n > hi) { console.error(`${flag(m[1])}: expected an integer ${lo}..${hi}, got ${v}`); process.exit(2); }
  opts[m[1]] = n;
}
const MODES = opts.modes.split(',');
for (const m of MODES) if (!['none', 'watch', 'auto', 'lean', 'static', 'base-watch', 'base-auto'].includes(m)) { console.error(`unknown mode '${m}': none, watch, auto, lean, static, base-watch, base-auto`); process.exit(2); }
const BASE_CLI = opts.baseline && path.join(path.resolve(opts.baseline), 'dist', 'lib', 'cli', 'main.js');
if (MODES.some((m) => m.startsWith('base-')) && !BASE_CLI) { console.error('modes base-watch and base-auto need --baseline DIR (a built tcpscope tree)'); process.exit(2); }
if (opts.bpfStats) {
  try { execFileSync('bpftool', ['version'], { stdio: 'ignore' }); } catch { console.error('--bpf-stats 1 needs bpftool: apt-get install bpftool'); process.exit(2); }
}
if (BASE_CLI && !fs.existsSync(BASE_CLI)) { console.error(`--baseline: ${BASE_CLI} is missing: build that tree first (npm ci)`); process.exit(2); }

const debug = (m) => { if (process.env.DEBUG_FLOOD) console.error(`[${new Date().toISOString().slice(11, 23)}] ${m}`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const median = (xs) => quantile(xs, 0.5);
const round1 = (x) => (x === null ? null : +x.toFixed(1));

/** Waits until `re` appears in what `child` wrote to stderr; rejects if it exits first or after `ms`. */
function waitFor(child, re, ms, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${text.slice(-500)}`)), ms);
    child.stderr.on('data', (d) => { text += d; if (re.test(text)) { clearTimeout(t); resolve(); } });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`${what}: exited ${code}: ${text.slice(-500)}`)); });
  });
}

const inNs = (ns, cmd, args) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const counter = (ns, ifname, which) => Number(inNs(ns, 'cat', [`/sys/class/net/${ifname}/statistics/${which}`]));

/**
 * The whole machine's CPU time from /proc/stat, seconds: softirq (where the veth's SYNs are
 * answered, by XDP or by the TCP stack) and all busy time (the flooder and curl included,
 * the same in every mode). USER_HZ is 100 on Linux.
 */
function machineCpu() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return { softirq: softirq / 100, busy: (user + nice + system + irq + softirq + (steal ?? 0)) / 100 };
}

/** A process's CPU seconds (utime + stime, /proc/PID/stat; USER_HZ 100), null once it is gone. */
function processCpu(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return null;
  }
}

/** `pid` and every process below it. */
function descendants(pid) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of parent) if (!out.has(p) && out.has(pp)) { out.add(p); grew = true; }
  }
  return out;
}

/** Ids of the BPF programs the processes in `pids` hold open (their fds' fdinfo). */
function heldProgramIds(pids) {
  const ids = new Set();
  for (const pid of pids) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
        const m = /^prog_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) ids.add(Number(m[1]));
      } catch { /* closed meanwhile */ }
    }
  }
  return ids;
}

/**
 * The BPF programs the processes in `pids` hold, by id: name, type, run count and kernel
 * run time (kernel.bpf_stats_enabled must be 1 for the last two to move).
 */
function bpfPrograms(pids) {
  const ids = heldProgramIds(pids);
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  const out = new Map();
  for (const p of all) {
    if (ids.has(p.id)) out.set(p.id, { name: p.name, type: p.type, runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 });
  }
  return out;
}

/**
 * Per program (type/name, and #2, #3... for the second and later loads of the same program
 * in id order, e.g. serve's own packets program and then the detector's): runs and kernel
 * ns over the interval.
 */
function programDelta(before, after) {
  const out = {};
  const seen = new Map();
  for (const [id, a] of [...after].sort((x, y) => x[0] - y[0])) {
    const b = before.get(id) ?? { runCnt: 0, runTimeNs: 0 };
    const base = `${a.type}/${a.name}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const key = n > 1 ? `${base}#${n}` : base;
    const o = (out[key] ??= { runs: 0, ns: 0 });
    o.runs += a.runCnt - b.runCnt;
    o.ns += a.runTimeNs - b.runTimeNs;
  }
  return out;
}

/** The server namespace's TcpExt counters that show listen-queue pressure (/proc/net/netstat read inside it). */
const PRESSURE = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed'];
function pressure(ns) {
  const lines = inNs(ns, 'cat', ['/proc/net/netstat']).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  return Object.fromEntries(PRESSURE.map((k) => [k, Number(values[names.indexOf(k)] ?? 0)]));
}

/**
 * Moves the TestNet's host side into a namespace of its own (the server's), so that the
 * sysctls the measurement needs are set there and nowhere else. Named as testnet names its
 * namespaces, so `tcpscope cleanup` finds it if this process dies.
 */
function serverNamespace(tn) {
  const ns = `tcps-${process.pid}-99`;
  const ip = (args) => execFileSync('ip', args, { stdio: 'pipe' });
  ip(['netns', 'add', ns]);
  try {
    ip(['link', 'set', tn.hostIf, 'netns', ns]);
    ip(['-n', ns, 'addr', 'add', `${tn.hostV4}/24`, 'dev', tn.hostIf]);
    ip(['-n', ns, '-6', 'addr', 'add', `${tn.hostV6}/64`, 'dev', tn.hostIf, 'nodad']);
    ip(['-n', ns, 'link', 'set', tn.hostIf, 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    // The listen queue holds `backlog` requests (the server asks for as many, and somaxconn
    // caps it); past it, the kernel answers SYNs with its own cookies (syncookies 1) or drops
    // them (0; then already past 3/4 of it, for peers not "proven"). No saved TCP metrics:
    // a peer with a remembered RTT counts as proven and skips that 3/4 rule, so the one curl
    // address would be treated as a returning client; each request is a new client here.
    // Set in this namespace only.
    inNs(ns, 'sysctl', ['-q', '-w', `net.core.somaxconn=${opts.backlog}`, `net.ipv4.tcp_max_syn_backlog=${opts.backlog}`,
      `net.ipv4.tcp_syncookies=${opts.syncookies}`, 'net.ipv4.tcp_no_metrics_save=1']);
  } catch (e) {
    try { ip(['netns', 'del', ns]); } catch { /* not made */ }
    throw e;
  }
  return { ns, destroy: () => { try { ip(['netns', 'del', ns]); } catch { /* gone */ } } };
}

/**
 * Starts tcpscope inside the server's namespace. `ip netns exec` gives the command a mount
 * namespace with a fresh /sys, without the cgroup2 mount the connection probes need (the
 * agent spins at start without it): mounted again there, gone with the command.
 */
function tcpscopeIn(srv, args, cli = CLI) {
  return spawn('ip', ['netns', 'exec', srv.ns, 'sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"', process.execPath, cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

let cleanup = () => {};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

/** One mode's round: the agent (if any) up, curl and hping3 started together, results. */
async function runRound(ctx, modeName) {
  const { tn, srv, client, port, dir, children } = ctx;
  const base = modeName.startsWith('base-');
  const mode = base ? modeName.slice(5) : modeName;
  let agent;
  let log = '';
  const stamp = (d) => { const now = Date.now(); log += String(d).split('\n').filter(Boolean).map((l) => `${now} ${l}\n`).join(''); };
  if (mode === 'watch' || mode === 'auto' || mode === 'lean') {
    const probes = mode === 'lean' ? { packets: false, connections: false, retransmits: false, resets: false, drops: false, rtt: false } : {};
    const config = { interfaces: [tn.hostIf], probes, guard: { enabled: mode !== 'watch' }, exporters: { prometheus: { port: 0, host: '127.0.0.1' } } };
    const file = path.join(dir, `${mode}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    agent = tcpscopeIn(srv, ['serve', '--config', file], base ? BASE_CLI : CLI);
    agent.stderr.on('data', stamp);
    children.push(agent);
    await waitFor(agent, /metrics at/, 30000, 'serve');
  } else if (mode === 'static') {
    agent = tcpscopeIn(srv, ['guard', '-i', tn.hostIf, '--protect-port', String(port), '--interval', '60s']);
    agent.stderr.on('data', stamp);
    children.push(agent);
    await waitFor(agent, /guarding/, 30000, 'guard');
  }
  debug(`${mode}: ready`);
  const attempts = opts.seconds * opts.rate;
  // Open loop: a request every 1/rate s whatever happened to the others, so a slow or
  // failed one does not thin out the sample.
  const curl = spawn('ip', ['netns', 'exec', tn.ns, 'timeout', String(opts.seconds + opts.timeout + 10), 'bash', '-c',
    `for i in $(seq ${attempts}); do curl -s -o /dev/null --interface ${client} --connect-timeout ${opts.timeout} --max-time ${opts.timeout} ` +
    `-w '%{http_code} %{time_connect} %{time_total}\\n' http://${tn.hostV4}:${port}/ & sleep ${1 / opts.rate}; done; wait`],
  { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(curl);
  const curlDone = once(curl, 'exit');
  let out = '';
  curl.stdout.on('data', (d) => { out += d; });
  const p0 = pressure(srv.ns);
  const owners = agent && opts.bpfStats ? descendants(agent.pid) : null;
  const progs0 = owners ? bpfPrograms(owners) : null;
  const agentCpu0 = agent ? processCpu(agent.pid) : null;
  const tx0 = counter(tn.ns, tn.nsIf, 'tx_packets');
  const cpu0 = machineCpu();
  const t0 = Date.now();
  const flood = startSynFlood(tn, tn.hostV4, port, opts.seconds);
  children.push(flood.child);
  await flood.done;
  const floodMs = Date.now() - t0;
  const cpu1 = machineCpu();
  const agentCpu1 = agent ? processCpu(agent.pid) : null;
  const programs = owners ? programDelta(progs0, bpfPrograms(owners)) : null;
  const tx = counter(tn.ns, tn.nsIf, 'tx_packets') - tx0;
  debug('flood over');
  await curlDone;
  const p1 = pressure(srv.ns);
  debug('curl loop over');
  const at = (re) => { const m = re.exec(log); return m ? Number(m[1]) - t0 : null; };
  const protectedAfterMs = at(/^(\d+) .*guard: protecting port/m);
  const answeredAfterMs = at(/^(\d+) .*guard: port \S+ answered/m);
  if (agent) {
    debug(`flood started ${t0}\n${log.split('\n').filter((l) => /guard|syn_flood|alert/.test(l)).slice(0, 8).join('\n')}`);
    const exited = once(agent, 'exit');
    agent.kill('SIGINT');
    await exited;
  }
  for (const c of [agent, curl, flood.child]) if (c) children.splice(children.indexOf(c), 1);
  const lines = out.trim().split('\n').filter(Boolean).map((l) => l.split(' '));
  const connected = lines.filter((l) => Number(l[1]) > 0);
  return {
    attempts,
    answered: lines.length,
    connected: connected.length,
    completed: lines.filter((l) => l[0] === '200').length,
    connectMs: connected.map((l) => Number(l[1]) * 1000),
    synPerSec: Math.round(tx / (floodMs / 1000)),
    // Over the flood: softirq CPU seconds per second, and its cost per SYN sent.
    softirqShare: (cpu1.softirq - cpu0.softirq) / (floodMs / 1000),
    softirqNsPerSyn: tx > 0 ? ((cpu1.softirq - cpu0.softirq) * 1e9) / tx : null,
    pressure: Object.fromEntries(PRESSURE.map((k) => [k, p1[k] - p0[k]])),
    protectedAfterMs,
    answeredAfterMs,
    // The agent's user + system CPU over the flood, CPU seconds per second (ip netns exec
    // and sh exec into it: the same pid).
    agentCpuShare: agentCpu0 !== null && agentCpu1 !== null ? (agentCpu1 - agentCpu0) / (floodMs / 1000) : null,
    // Its BPF programs over the flood: runs, and kernel ns per run and per SYN sent.
    programs: programs && Object.fromEntries(Object.entries(programs).filter(([, v]) => v.runs > 0).map(([k, v]) => [k, {
      runs: v.runs, nsPerRun: Math.round(v.ns / v.runs), nsPerSyn: tx > 0 ? Math.round(v.ns / tx) : null,
    }])),
  };
}

/** Per program, medians over the rounds of its ns per run and ns per SYN. */
function programMedians(rs) {
  const names = new Set(rs.flatMap((r) => Object.keys(r.programs ?? {})));
  const out = {};
  for (const k of names) {
    const vs = rs.map((r) => r.programs?.[k]).filter(Boolean);
    out[k] = { ns_per_run: median(vs.map((v) => v.nsPerRun)), ns_per_syn: median(vs.map((v) => v.nsPerSyn)), runs: median(vs.map((v) => v.runs)) };
  }
  return out;
}

async function main() {
  const tn = createTestNet();
  let srv;
  let fnet;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-flood-'));
  const children = [];
  const STATS = '/proc/sys/kernel/bpf_stats_enabled';
  let statsWas;
  cleanup = () => {
    if (statsWas !== undefined) {
      try { fs.writeFileSync(STATS, statsWas); } catch { /* left as it was set */ }
      statsWas = undefined;
    }
    // hping3 and the curl loop run under `timeout`, which makes a process group of its own:
    // killed as a group, or they outlive it.
    for (const c of children) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { /* not a group leader, or gone */ }
      try { c.kill('SIGKILL'); } catch { /* gone */ }
    }
    fnet?.destroy();
    tn.destroy();
    srv?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const results = Object.fromEntries(MODES.map((m) => [m, []]));
  const loads = [];
  try {
    if (opts.bpfStats) {
      statsWas = fs.readFileSync(STATS, 'utf8').trim();
      fs.writeFileSync(STATS, '1');
    }
    srv = serverNamespace(tn);
    // The server answers forged sources through the veth only (checked with ip route get).
    fnet = prepareFloodNet(tn, { netns: srv.ns });
    const client = tn.nsV4.replace(/\.2$/, '.3');
    execFileSync('ip', ['-n', tn.ns, 'addr', 'add', `${client}/24`, 'dev', tn.nsIf]);
    const port = 20000 + (process.pid % 20000);
    // The server: its own process in its own namespace, as a real service would be.
    const server = spawn('ip', ['netns', 'exec', srv.ns, process.execPath, '-e',
      `require('node:http').createServer((q, s) => s.end('ok\\n')).listen({ port: ${port}, host: '${tn.hostV4}', backlog: ${opts.backlog} }, () => console.error('listening'))`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(server);
    await waitFor(server, /listening/, 10000, 'server');
    debug('server up');
    const ctx = { tn, srv, client, port, dir, children };
    for (let round = 0; round < opts.rounds; round++) {
      for (const mode of MODES) {
        const r = await runRound(ctx, mode);
        results[mode].push(r);
        loads.push(os.loadavg()[0]);
        const q = (x) => (quantile(r.connectMs, x) ?? NaN).toFixed(1);
        console.log(`round ${round + 1} ${mode.padEnd(6)} connected ${r.connected}/${r.attempts} completed ${r.completed} connect p50 ${q(0.5)} ms p99 ${q(0.99)} ms, veth ${r.synPerSec} pkt/s, ` +
          `softirq ${r.softirqShare.toFixed(2)} CPU (${r.softirqNsPerSyn === null ? '-' : Math.round(r.softirqNsPerSyn)} ns/SYN), listen drops ${r.pressure.ListenDrops}, SYN queue full ${r.pressure.TCPReqQFullDrop + r.pressure.TCPReqQFullDoCookies}, kernel cookies ${r.pressure.SyncookiesSent} (${r.pressure.SyncookiesRecv} ACKs back)` +
          `${r.protectedAfterMs !== null ? `, protected after ${r.protectedAfterMs} ms` : ''}${r.answeredAfterMs !== null ? `, answering after ${r.answeredAfterMs} ms` : ''} (load ${os.loadavg()[0].toFixed(2)})`);
        if (r.agentCpuShare !== null) console.log(`  agent CPU ${r.agentCpuShare.toFixed(2)}`);
        for (const [k, v] of Object.entries(r.programs ?? {}).sort((a, b) => b[1].nsPerSyn - a[1].nsPerSyn)) {
          console.log(`  ${k.padEnd(40)} ${String(v.runs).padStart(9)} runs ${String(v.nsPerRun).padStart(6)} ns/run ${String(v.nsPerSyn).padStart(6)} ns/SYN`);
        }
        await sleep(2000); // the flood's half-open requests expire from the listen queue's head
      }
    }
  } finally {
    cleanup();
  }
  const summary = {};
  for (const [mode, rs] of Object.entries(results)) {
    const connect = rs.flatMap((r) => r.connectMs);
    const attempts = rs.reduce((a, r) => a + r.attempts, 0);
    const connected = rs.reduce((a, r) => a + r.connected, 0);
    summary[mode] = {
      attempts,
      connected,
      completed: rs.reduce((a, r) => a + r.completed, 0),
      connect_success: attempts ? +(connected / attempts).toFixed(3) : null,
      connect_ms_p50: round1(median(connect)),
      connect_ms_p99: round1(quantile(connect, 0.99)),
      veth_pkt_per_sec_median: median(rs.map((r) => r.synPerSec)),
      softirq_cpu_share_median: +median(rs.map((r) => r.softirqShare)).toFixed(3),
      softirq_ns_per_syn_median: Math.round(median(rs.map((r) => r.softirqNsPerSyn).filter((x) => x !== null))),
      // The server namespace's TcpExt counters over a round, medians of the rounds.
      kernel: Object.fromEntries(PRESSURE.map((k) => [k, median(rs.map((r) => r.pressure[k]))])),
      protected_after_ms: rs.map((r) => r.protectedAfterMs).filter((x) => x !== null),
      answered_after_ms: rs.map((r) => r.answeredAfterMs).filter((x) => x !== null),
      ...(rs[0]?.agentCpuShare != null ? { agent_cpu_share_median: +median(rs.map((r) => r.agentCpuShare)).toFixed(3) } : {}),
      ...(rs[0]?.programs ? { bpf_ns_per_syn_median: programMedians(rs) } : {}),
    };
  }
  console.log(JSON.stringify({
    bench: 'guard-flood', kernel: os.release(), cpus: os.cpus().length, seconds: opts.seconds, rounds: opts.rounds, rate: opts.rate,
    timeout: opts.timeout, backlog: opts.backlog, syncookies: opts.syncookies, loadavg: [+Math.min(...loads).toFixed(2), +Math.max(...loads).toFixed(2)], modes: summary,
  }));
}

main().catch((e) => { console.error(e.message); cleanup(); process.exit(1); });
