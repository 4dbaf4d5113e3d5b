// SPDX-License-Identifier: MIT
// The network of the SYN-flood tests: a veth into a namespace whose forged-source replies stay
// on the machine (FloodNet), a second client address in the namespace, and a listener on the
// host side that closes each connection at once.
import { execFileSync } from 'node:child_process';
import type net from 'node:net';
import { prepareFloodNet, FloodNet } from '../../lib/net/floodnet';
import { createTestNet, TestNet } from './netns';
import { listen } from './listen';
import { freePort } from './tcpprobe';

export interface FloodTarget {
  tn: TestNet;
  fnet: FloodNet;
  /** A legitimate client's address in the namespace (beside hping3's forged ones). */
  client: string;
  port: number;
  server: net.Server;
}

export async function floodTarget(): Promise<FloodTarget> {
  const tn = createTestNet();
  const fnet = prepareFloodNet(tn);
  const client = tn.nsV4.replace(/\.2$/, '.3');
  execFileSync('ip', ['-n', tn.ns, 'addr', 'add', `${client}/24`, 'dev', tn.nsIf]);
  const port = freePort();
  const server = await listen(port, tn.hostV4, { backlog: 64, connections: 'destroy' });
  return { tn, fnet, client, port, server };
}
