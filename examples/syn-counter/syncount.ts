// SPDX-License-Identifier: MIT
// Example custom probe, user-space half: load syncount.bpf.o, attach it at tc ingress of
// an interface, and print SYN counts per source every second.
//
//   sudo node dist/examples/syn-counter/syncount.js lo 5 [port]
//
// (interface, seconds to run, optional destination port to count)
import { BpfObject, builtObjectPath } from '../../lib/bpf';

/** The map's key as the BTF decoder returns it (`tcpscope gen-types` writes this). */
interface Source {
  addr: Uint8Array;
  family: number;
  pad: number;
}

export function formatSource(src: Source): string {
  if (src.family === 4) return Array.from(src.addr.subarray(0, 4)).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((src.addr[i]! << 8) | src.addr[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Counts SYNs on `iface` for `seconds`, calling `report` once a second. */
export async function countSyns(iface: string, seconds: number, onlyPort = 0, report: (counts: Map<string, bigint>) => void = print): Promise<Map<string, bigint>> {
  using obj = BpfObject.load(builtObjectPath('syncount'), { globals: { only_port: onlyPort } });
  obj.program('count_syns').attachTc(iface, { direction: 'ingress' });
  const syns = obj.map<Source, bigint>('syns_by_source');
  const snapshot = (): Map<string, bigint> => new Map(syns.entries().map(([src, n]) => [formatSource(src), n]));
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    report(snapshot());
  }
  return snapshot();
}

function print(counts: Map<string, bigint>): void {
  const rows = [...counts].sort((a, b) => Number(b[1] - a[1])).slice(0, 10);
  console.log(rows.length ? rows.map(([src, n]) => `${src.padEnd(40)} ${n}`).join('\n') : '(no SYNs yet)');
  console.log('--');
}

if (require.main === module) {
  const [iface = 'lo', seconds = '5', port = '0'] = process.argv.slice(2);
  countSyns(iface, Number(seconds), Number(port)).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
