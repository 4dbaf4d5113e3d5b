#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/capture: the cost of capturing incoming TCP, tcpscope vs tcpdump, on the same
// bounded traffic over a veth pair into a namespace this script creates:
//   syn    hping3 -S --faster -c N from the namespace to a closed port of the host end
//   conns  many short connections writing a few bytes each to a server on the host end
// each measured with: no capture, `tcpdump -Q in -s 96 -w FILE`, `tcpscope packets -w FILE
// -s 96` (tc and XDP) and the library's iterator (decoded events). Reported per phase:
// packets arriving (rx_packets of the host end), packets/s achieved, CPU seconds of the
// capturing process (the sum of its threads' run time from /proc/PID/task/*/schedstat, which
// the scheduler keeps in ns: utime+stime are sampled at the tick, 10 ms here, as coarse as
// tcpdump's whole cost), packets captured, lost. Each phase runs --rounds times (interleaved)
// and the medians are reported.
// Then the kernel time per packet of the packet program (BPF_PROG_TEST_RUN on an IPv4 and
// an IPv6 SYN, a reader draining the ring meanwhile).
// Last line: one JSON object with everything.
//
//   node bench/capture/run.js [--syns 50000] [--conns 1500] [--rounds 3]
//                             [--phases none,tcpdump,tc,xdp,lib,lib_live]
// (lib_live_c, node_wake: lib_live's floors, see lib-reader.js: the same ring read in C at
// the same latency, and a Node process waking every 10 ms without reading; lib_live_raw:
// lib_live without decoding)
// (lib_base, lib_live_base: the same with the library at TCPSCOPE_BENCH_BASE_LIB, for A/B)
// lib reads decoded events batched as tcpdump -w batches (1 s); lib_live with the library's
// defaults (10 ms latency). tcpdump -w delivers with up to its 1 s buffer timeout;
// tcpdump_live (--immediate-mode) is the tcpdump with a latency like lib_live's, judged
// against lib_live.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn, execFileSync } = require('node:child_process');
const { once } = require('node:events');

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
// TCPSCOPE_BENCH_READER: another reader script taking lib-reader.js's arguments, for experiments.
const LIB_READER = process.env.TCPSCOPE_BENCH_READER ?? path.join(__dirname, 'lib-reader.js');
const CONNS = path.join(__dirname, 'conns.js');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const SYNS = Number(arg('syns', 50000));
const CONNECTIONS = Number(arg('conns', 1500));
const PHASES = String(arg('phases', 'none,tcpdump,tc,xdp,lib,lib_live')).split(',');
const ROUNDS = Number(arg('rounds', 3));
const DRAIN_MS = 1300;
const WORKLOADS = String(arg('workloads', 'syn,conns')).split(',');

if (!fs.existsSync(CLI)) { console.error(`${CLI} is missing: run \`node scripts/build.js\` first`); process.exit(1); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9;
const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });

// ---- the namespace ----
const id = process.pid % 100000;
const NS = `tcpsb-${id}`;
const HOST_IF = `tcbh${id}`.slice(0, 15);
const NS_IF = `tcbn${id}`.slice(0, 15);
const octet = (process.pid % 200) + 20;
const HOST_V4 = `10.198.${octet}.1`;
const NS_V4 = `10.198.${octet}.2`;

function teardown() {
  try { ip('link', 'del', HOST_IF); } catch { /* gone */ }
  try { ip('netns', 'del', NS); } catch { /* gone */ }
}
function setup() {
  teardown();
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_V4}/24`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', NS, 'addr', 'add', `${NS_V4}/24`, 'dev', NS_IF);
  ip('-n', NS, 'link', 'set', NS_IF, 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
}
process.on('SIGINT', () => { teardown(); process.exit(130); });

/** TCP segments the namespace sent (its TcpOutSegs; includes retransmissions). */
function tcpSegmentsSent() {
  const snmp = execFileSync('ip', ['netns', 'exec', NS, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = snmp[0].split(/\s+/), values = snmp[1].split(/\s+/);
  return Number(values[names.indexOf('OutSegs')]);
}

function rxPackets() {
  return Number(fs.readFileSync(`/sys/class/net/${HOST_IF}/statistics/rx_packets`, 'utf8'));
}
/** Pids of `pid` and its descendants now. */
function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks = [];
    try { tasks = fs.readdirSync(`/proc/${pids[i]}/task`); } catch { continue; }
    for (const task of tasks) {
      try { pids.push(...fs.readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)); } catch { /* exited */ }
    }
  }
  return pids;
}

/**
 * CPU seconds of every live thread of `pid` and of its child processes (the C reader of
 * lib_live_c runs in one); a thread that exits takes its time along.
 */
function cpuSeconds(pid) {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tasks = [];
    try { tasks = fs.readdirSync(`/proc/${p}/task`); } catch { continue; }
    for (const task of tasks) {
      try { ns += Number(fs.readFileSync(`/proc/${p}/task/${task}/schedstat`, 'utf8').split(' ')[0]); } catch { /* exited */ }
    }
  }
  return ns / 1e9;
}

function start(cmd, args, ready) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exit = once(child, 'exit');
  return {
    child, exit, out: () => out, err: () => err,
    async ready() {
      const deadline = Date.now() + 15000;
      while (!ready.test(err)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${cmd} did not start: ${err}`);
        await sleep(20);
      }
      await sleep(200);
    },
  };
}

async function runIn(cmd, args) {
  const child = spawn('ip', ['netns', 'exec', NS, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const [code] = await once(child, 'exit');
  if (code !== 0 && cmd !== 'hping3') throw new Error(`${cmd} failed (${code}): ${err}`);
}

const SERVER_PORT = 18080;
let server;

async function traffic(workload) {
  if (workload === 'syn') await runIn('hping3', ['-q', '-S', '--faster', '-c', String(SYNS), '-p', '9', HOST_V4]);
  else await runIn(process.execPath, [CONNS, HOST_V4, String(SERVER_PORT), String(CONNECTIONS), '100', '32']);
}

async function phase(workload, name, tmp) {
  let cap;
  const file = path.join(tmp, `${workload}-${name}.pcap${name.startsWith('tcpdump') ? '' : 'ng'}`);
  if (name === 'tcpdump' || name === 'tcpdump_live') {
    cap = start('tcpdump', ['-i', HOST_IF, '-Q', 'in', '-s', '96', '-nn', ...(name === 'tcpdump_live' ? ['--immediate-mode'] : []), '-w', file, 'tcp'], /listening on/);
  }
  else if (name === 'tc' || name === 'xdp') cap = start(process.execPath, [CLI, 'packets', '-i', HOST_IF, '-s', '96', '-w', file, ...(name === 'xdp' ? ['--xdp'] : [])], /listening on/);
  else if (name === 'lib') cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', 'buffered'], /listening on/);
  else if (name === 'lib_live') cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', 'live'], /listening on/);
  // The floors of lib_live: the same ring read by libbpf's consumer in C at the same
  // latency, and a Node process that only wakes every 10 ms (see lib-reader.js).
  else if (name === 'lib_live_c') cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', 'live', path.join(ROOT, 'dist', 'lib'), 'c'], /listening on/);
  else if (name === 'lib_live_raw') cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', 'live', path.join(ROOT, 'dist', 'lib'), 'raw'], /listening on/);
  else if (name === 'node_wake') cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', 'live', path.join(ROOT, 'dist', 'lib'), 'timer'], /listening on/);
  // A/B against another build of the library: TCPSCOPE_BENCH_BASE_LIB=/path/to/dist/lib
  else if (name === 'lib_base' || name === 'lib_live_base') {
    if (!process.env.TCPSCOPE_BENCH_BASE_LIB) throw new Error(`phase ${name} needs TCPSCOPE_BENCH_BASE_LIB (a dist/lib directory)`);
    cap = start(process.execPath, [LIB_READER, HOST_IF, 'tc', name === 'lib_base' ? 'buffered' : 'live', process.env.TCPSCOPE_BENCH_BASE_LIB], /listening on/);
  }
  if (cap) await cap.ready();
  const rx0 = rxPackets();
  const sent0 = tcpSegmentsSent();
  const cpu0 = cap ? cpuSeconds(cap.child.pid) : 0;
  const t0 = now();
  await traffic(workload);
  const elapsed = now() - t0;
  if (name === 'node_wake') cap.child.kill('SIGUSR2');
  // Let every capture write out what it buffered before its CPU is read: tcpdump -w and
  // tcpscope -w both read their kernel buffer at least once a second.
  await sleep(DRAIN_MS);
  const rx = rxPackets() - rx0;
  // hping3 writes raw packets the namespace's TCP counters do not see
  const sent = workload === 'syn' ? SYNS : tcpSegmentsSent() - sent0;
  const cpu = cap ? cpuSeconds(cap.child.pid) - cpu0 : 0;
  let captured = null, lost = null;
  if (cap) {
    cap.child.kill('SIGINT');
    const killer = setTimeout(() => { console.error(`${name} did not stop within 10 s of SIGINT: killed`); cap.child.kill('SIGKILL'); }, 10_000);
    await cap.exit;
    clearTimeout(killer);
    const err = cap.err();
    if (name.startsWith('tcpdump')) {
      captured = Number(/(\d+) packets? captured/.exec(err)?.[1] ?? NaN);
      lost = Number(/(\d+) packets? dropped by kernel/.exec(err)?.[1] ?? NaN);
    } else if (name.startsWith('lib') || name === 'node_wake') {
      const r = JSON.parse(cap.out().trim().split('\n').pop());
      captured = r.received;
      lost = r.lost;
    } else {
      const m = /(\d+) packets received, (\d+) lost/.exec(err);
      captured = Number(m?.[1] ?? NaN);
      lost = Number(m?.[2] ?? NaN);
    }
    fs.rmSync(file, { force: true });
  }
  return { workload, phase: name, rx_packets: rx, tcp_sent: sent, seconds: +elapsed.toFixed(3), pps: Math.round(rx / elapsed), cpu_s: +cpu.toFixed(4), cpu_pct: +((cpu / (elapsed + DRAIN_MS / 1000)) * 100).toFixed(1), captured, lost };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

/** Medians over rounds; captured and lost summed, so one lossy round shows. */
function summarize(workload, name, rounds) {
  const sum = (k) => rounds.some((r) => r[k] === null) ? null : rounds.reduce((n, r) => n + r[k], 0);
  return {
    workload, phase: name, rounds: rounds.length,
    rx_packets: rounds.reduce((n, r) => n + r.rx_packets, 0),
    tcp_sent: rounds.reduce((n, r) => n + r.tcp_sent, 0),
    pps: median(rounds.map((r) => r.pps)),
    cpu_s: +median(rounds.map((r) => r.cpu_s)).toFixed(4),
    cpu_s_all: rounds.map((r) => r.cpu_s),
    captured: sum('captured'), lost: sum('lost'),
  };
}

/** Per workload and tcpscope phase: CPU and packet rate no worse than tcpdump's, nothing lost. */
function judge(results) {
  const out = {};
  for (const workload of WORKLOADS) {
    const of = (name) => results.find((r) => r.workload === workload && r.phase === name);
    const tcpdump = of('tcpdump'), none = of('none');
    if (!tcpdump) continue;
    const live = of('tcpdump_live');
    const liveC = of('lib_live_c'), wake = of('node_wake');
    for (const name of ['tc', 'xdp', 'lib', 'lib_live', 'lib_base', 'lib_live_base', 'lib_live_c', 'lib_live_raw', 'node_wake']) {
      const r = of(name);
      if (!r) continue;
      out[`${workload}_${name}`] = {
        cpu_vs_tcpdump: +(r.cpu_s / Math.max(tcpdump.cpu_s, 1e-6)).toFixed(2),
        // lib_live against its floors: C reading the same ring at the same latency, and
        // Node waking as often without reading anything
        ...(liveC && name.startsWith('lib_live') && name !== 'lib_live_c' ? { cpu_vs_c_live: +(r.cpu_s / Math.max(liveC.cpu_s, 1e-6)).toFixed(2) } : {}),
        ...(wake && name.startsWith('lib_live') && name !== 'lib_live_c' ? { cpu_above_node_wake_ms: +((r.cpu_s - wake.cpu_s) * 1000).toFixed(1) } : {}),
        ...(live && name.startsWith('lib_live') ? { cpu_vs_tcpdump_live: +(r.cpu_s / Math.max(live.cpu_s, 1e-6)).toFixed(2) } : {}),
        cpu_le_tcpdump: r.cpu_s <= tcpdump.cpu_s,
        ...(none ? { pps_vs_none: +(r.pps / none.pps).toFixed(3), tcpdump_pps_vs_none: +(tcpdump.pps / none.pps).toFixed(3) } : {}),
        ...(name === 'node_wake' ? {} : { nothing_lost: r.lost === 0 && r.captured === r.tcp_sent }),
      };
    }
  }
  return out;
}

async function kernelCost() {
  const lib = require(path.join(ROOT, 'dist', 'lib'));
  const { tcpFrame } = require(path.join(ROOT, 'dist', 'lib', 'bpf'));
  const frames = {
    ipv4: tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 5555, dport: 8080, flags: { syn: true }, options: { mss: 1460, sackPermitted: true, timestamps: [1, 0], wscale: 7 } }),
    ipv6: tcpFrame({ src: '2001:db8::1', dst: '2001:db8::2', sport: 5555, dport: 8080, flags: { syn: true }, options: { mss: 1440, sackPermitted: true, timestamps: [1, 0], wscale: 7 } }),
  };
  const out = {};
  for (const [label, options] of [['tc', { hook: 'tc' }], ['xdp', { hook: 'xdp' }], ['tc_syn_counts', { hook: 'tc', countSyns: true }], ['tc_filtered_out', { hook: 'tc', filter: 'port 1 or net 10.0.0.0/8' }]]) {
    const probe = lib.packets({ interfaces: [HOST_IF], ...options });
    let drained = 0;
    const reader = (async () => { for await (const b of probe.rawBatches()) drained += b.count; })();
    const prog = probe.object.program(options.hook === 'tc' ? 'packets_tc' : 'packets_xdp');
    // The first write to each page of a new ring costs microseconds on some VMs (this
    // one backs guest pages on first write: ~6.5 us per 4 KiB, 180 ns per record over the
    // first pass of an 8 MiB ring): report that pass apart, then time the warm ring.
    const ringBytes = probe.object.mapInfos().find((m) => m.name === 'packets').maxEntries;
    const firstPass = [];
    for (let written = 0; written < ringBytes * 1.1 / 64; written += 2000) {
      firstPass.push(prog.testRun({ data: frames.ipv4, repeat: 2000 }).durationNs);
      await sleep(1);
    }
    out[`${label}_first_pass_ns`] = +median(firstPass).toFixed(1);
    for (const [family, frame] of Object.entries(frames)) {
      const runs = [];
      for (let round = 0; round < 20; round++) {
        runs.push(prog.testRun({ data: frame, repeat: 2000 }).durationNs);
        await sleep(1); // the reader drains between rounds
      }
      runs.sort((a, b) => a - b);
      out[`${label}_${family}_ns`] = +runs[Math.floor(runs.length / 2)].toFixed(1);
    }
    await sleep(50);
    out[`${label}_lost`] = probe.stats().lost;
    probe.close();
    await reader;
    void drained;
  }
  return out;
}

(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-capbench-'));
  const results = [];
  try {
    setup();
    server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); s.on('error', () => {}); });
    server.listen(SERVER_PORT, HOST_V4);
    await once(server, 'listening');
    await runIn(process.execPath, [CONNS, HOST_V4, String(SERVER_PORT), '3', '10', '1']); // resolve the neighbour first
    for (const workload of WORKLOADS) {
      const runs = new Map(PHASES.map((name) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of PHASES) {
          const r = await phase(workload, name, tmp);
          runs.get(name).push(r);
          console.error(`${workload.padEnd(6)} ${name.padEnd(8)} rx ${String(r.rx_packets).padStart(7)}  ${String(r.pps).padStart(7)} pkt/s  cpu ${(r.cpu_s * 1000).toFixed(1)} ms (${r.cpu_pct}%)  captured ${r.captured ?? '-'}  lost ${r.lost ?? '-'}`);
        }
      }
      for (const name of PHASES) results.push(summarize(workload, name, runs.get(name)));
    }
    const kernel = process.argv.includes('--skip-kernel') ? {} : await kernelCost();
    for (const [k, v] of Object.entries(kernel)) console.error(`kernel ${k} ${v}`);
    const targets = judge(results);
    for (const r of results) console.error(`median ${r.workload.padEnd(6)} ${r.phase.padEnd(8)} ${String(r.pps).padStart(7)} pkt/s  cpu ${(r.cpu_s * 1000).toFixed(1)} ms  captured ${r.captured ?? '-'}/${r.tcp_sent} sent  lost ${r.lost ?? '-'}`);
    server.close();
    console.log(JSON.stringify({ bench: 'capture', syns: SYNS, connections: CONNECTIONS, rounds: ROUNDS, cpus: os.cpus().length, kernel: os.release(), results, targets, kernel_ns: kernel }));
  } finally {
    teardown();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); teardown(); process.exit(1); });
