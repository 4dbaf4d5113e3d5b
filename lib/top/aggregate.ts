// SPDX-License-Identifier: MIT
// What `tcpscope top` shows: the busiest remote hosts and connections over the last
// interval, from incoming packets, with owners from connection events.
import type { PacketEvent } from '../probes/packets';
import type { ConnectionEvent } from '../probes/connections';
import { formatEndpoint } from '../net/addr';
import { TCP_FLAGS } from '../bpf/packet';

export interface HostRow {
  remote: string;
  packets: number;
  bytes: number;
  syns: number;
  connections: number;
}

export interface ConnectionRow {
  local: string;
  remote: string;
  packets: number;
  bytes: number;
  pid: number;
  comm: string;
}

export interface TopSnapshot {
  time: Date;
  intervalMs: number;
  hosts: HostRow[];
  connections: ConnectionRow[];
}

const { syn: SYN, ack: ACK } = TCP_FLAGS;

const endpoint = formatEndpoint;

export class TopAggregator {
  private hosts = new Map<string, HostRow & { flows: Set<string> }>();
  private flows = new Map<string, ConnectionRow>();
  /** Owners outlive an interval: a long connection keeps its owner. Bounded. */
  private readonly owners = new Map<string, { pid: number; comm: string }>();
  private started = Date.now();

  constructor(private readonly limit = 10, private readonly maxOwners = 65536) {}

  addPacket(p: PacketEvent): void {
    const remoteAddr = p.saddr;
    const remote = endpoint(remoteAddr, p.sport);
    const local = endpoint(p.daddr, p.dport);
    let host = this.hosts.get(remoteAddr);
    if (!host) {
      host = { remote: remoteAddr, packets: 0, bytes: 0, syns: 0, connections: 0, flows: new Set() };
      this.hosts.set(remoteAddr, host);
    }
    host.packets++;
    host.bytes += p.ipLen;
    if ((p.flagBits & (SYN | ACK)) === SYN) host.syns++;
    const key = `${local}|${remote}`;
    host.flows.add(key);
    let flow = this.flows.get(key);
    if (!flow) {
      const owner = this.owners.get(key);
      flow = { local, remote, packets: 0, bytes: 0, pid: owner?.pid ?? 0, comm: owner?.comm ?? '' };
      this.flows.set(key, flow);
    }
    flow.packets++;
    flow.bytes += p.ipLen;
  }

  addConnection(e: ConnectionEvent): void {
    const key = `${endpoint(e.saddr, e.sport)}|${endpoint(e.daddr, e.dport)}`;
    // Closed connections keep their owner (bounded by maxOwners): their last packets may be
    // read from the packet ring after the close event from the connection ring.
    if (!e.pid) return;
    this.owners.delete(key);
    if (this.owners.size >= this.maxOwners) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(key, { pid: e.pid, comm: e.comm });
    const flow = this.flows.get(key);
    if (flow) { flow.pid = e.pid; flow.comm = e.comm; }
  }

  /** The busiest hosts and connections since the last snapshot; starts a new interval. */
  snapshot(now = Date.now()): TopSnapshot {
    const hosts = [...this.hosts.values()]
      .map(({ flows, ...row }) => ({ ...row, connections: flows.size }))
      .sort((a, b) => b.bytes - a.bytes || b.packets - a.packets)
      .slice(0, this.limit);
    const connections = [...this.flows.values()].sort((a, b) => b.bytes - a.bytes || b.packets - a.packets).slice(0, this.limit);
    const snap = { time: new Date(now), intervalMs: now - this.started, hosts, connections };
    this.hosts = new Map();
    this.flows = new Map();
    this.started = now;
    return snap;
  }
}

/** A byte count or rate in at most 10 characters: `898 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`. */
export function human(bytes: number): string {
  if (Math.round(bytes) < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** The snapshot as the terminal table `tcpscope top` draws. */
export function renderTop(snap: TopSnapshot): string {
  const secs = Math.max(snap.intervalMs, 1) / 1000;
  const lines = [`tcpscope top — ${snap.time.toISOString().slice(11, 19)} — incoming TCP over ${secs.toFixed(1)} s`, ''];
  lines.push(`${'REMOTE HOST'.padEnd(40)} ${'PKT/s'.padStart(8)} ${'BYTES/s'.padStart(11)} ${'SYN/s'.padStart(7)} ${'CONNS'.padStart(6)}`);
  for (const h of snap.hosts) {
    lines.push(`${h.remote.padEnd(40)} ${(h.packets / secs).toFixed(0).padStart(8)} ${human(h.bytes / secs).padStart(11)} ${(h.syns / secs).toFixed(0).padStart(7)} ${String(h.connections).padStart(6)}`);
  }
  if (!snap.hosts.length) lines.push('(no incoming TCP)');
  lines.push('', `${'LOCAL'.padEnd(28)} ${'REMOTE'.padEnd(30)} ${'PKT/s'.padStart(8)} ${'BYTES/s'.padStart(11)}  PROCESS`);
  for (const c of snap.connections) {
    lines.push(`${c.local.padEnd(28)} ${c.remote.padEnd(30)} ${(c.packets / secs).toFixed(0).padStart(8)} ${human(c.bytes / secs).padStart(11)}  ${c.pid ? `${c.comm}[${c.pid}]` : '-'}`);
  }
  return lines.join('\n');
}
