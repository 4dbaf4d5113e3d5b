// SPDX-License-Identifier: MIT
import { once } from 'node:events';
import type { TestNet } from '../../lib/net/testnet';
import { TRAFFIC_SCRIPT } from '../../lib/net/testnet';

export { createTestNet, TRAFFIC_SCRIPT } from '../../lib/net/testnet';
export type { TestNet } from '../../lib/net/testnet';

/** Runs `connections` connections from the namespace to `host:port`, each sending `bytes`; throws if any fails. */
export async function runTraffic(tn: TestNet, host: string, port: number, connections: number, bytes = 0): Promise<void> {
  const child = tn.spawnNode(TRAFFIC_SCRIPT, [host, String(port), String(connections), String(bytes)]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`traffic from ${tn.ns} to ${host}:${port} failed (exit ${code}): ${stderr}`);
}
