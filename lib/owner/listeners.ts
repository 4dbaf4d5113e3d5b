// SPDX-License-Identifier: MIT
// Which process listens on which TCP port, from /proc: the seed of the BPF listen_owners
// map for sockets that were listening before a probe started. Covers every network
// namespace some process is in (each read through /proc/PID/net/tcp{,6} of one of its
// processes).
import fs from 'node:fs';

export interface ListeningSocket {
  /** Network namespace inode (as /proc/PID/ns/net). */
  netns: number;
  family: 'ipv4' | 'ipv6';
  port: number;
  inode: number;
  pid: number;
  comm: string;
}

const TCP_LISTEN = '0A';

function listenInodes(pid: number): Array<{ family: 'ipv4' | 'ipv6'; port: number; inode: number }> {
  const out: Array<{ family: 'ipv4' | 'ipv6'; port: number; inode: number }> = [];
  for (const [file, family] of [['tcp', 'ipv4'], ['tcp6', 'ipv6']] as const) {
    let text: string;
    try { text = fs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== TCP_LISTEN) continue;
      const port = parseInt(cols[1]!.split(':')[1]!, 16);
      const inode = Number(cols[9]);
      if (inode > 0) out.push({ family, port, inode });
    }
  }
  return out;
}

function socketInodes(pid: number): number[] {
  const out: number[] = [];
  let fds: string[];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return out; }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(Number(m[1]));
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** Every listening TCP socket of every process, with the process that holds it. */
export function listeningSockets(): ListeningSocket[] {
  const byNetns = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const ino = fs.statSync(`/proc/${pid}/ns/net`).ino;
      let pids = byNetns.get(ino);
      if (!pids) byNetns.set(ino, (pids = []));
      pids.push(pid);
    } catch { /* exited or kernel thread */ }
  }
  const out: ListeningSocket[] = [];
  for (const [netns, pids] of byNetns) {
    let listeners: ReturnType<typeof listenInodes> = [];
    for (const pid of pids) {
      listeners = listenInodes(pid);
      if (listeners.length || fs.existsSync(`/proc/${pid}/net/tcp`)) break;
    }
    if (!listeners.length) continue;
    const wanted = new Map(listeners.map((l) => [l.inode, l]));
    // Lowest pid first: a forking server's parent usually holds the listener.
    for (const pid of pids.sort((a, b) => a - b)) {
      if (!wanted.size) break;
      for (const inode of socketInodes(pid)) {
        const l = wanted.get(inode);
        if (!l) continue;
        wanted.delete(inode);
        let comm = '';
        try { comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* exited */ }
        out.push({ netns, family: l.family, port: l.port, inode, pid, comm });
      }
    }
  }
  return out;
}
