// SPDX-License-Identifier: MIT
// `-i IFACE` as the packet commands read it: names (repeatable, comma-separated) or `any`,
// every interface that is up now and, followed through rtnetlink, each one created later.
import { upInterfaces } from '../../net/interfaces';
import { watchLinks } from '../../net/link-watch';
import type { PacketProgram } from '../../probes/packets';
import type { CommandContext } from '../command';

export interface InterfaceChoice {
  interfaces: string[];
  /** `-i any` (or no -i where that means every interface): follow new interfaces. */
  follow: boolean;
}

/** The interfaces of -i; `whenNone` says what no -i means ('all' or 'none'). */
export function interfaceArg(ctx: CommandContext, whenNone: 'all' | 'none'): InterfaceChoice {
  const given = ((ctx.values['interface'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (!given.length) return whenNone === 'all' ? { interfaces: upInterfaces(), follow: false } : { interfaces: [], follow: false };
  if (!given.includes('any')) return { interfaces: given, follow: false };
  const named = given.filter((n) => n !== 'any');
  return { interfaces: [...new Set([...upInterfaces(), ...named])], follow: true };
}

/**
 * Attaches `programs()` to each interface created from now on, until the command stops;
 * says so on stderr. Start it before listing the interfaces attached at the start, so none
 * falls between the two.
 */
export function followInterfaces(ctx: CommandContext, programs: () => PacketProgram[]): void {
  const watch = watchLinks(({ ifindex, name }) => {
    if (ctx.signal.aborted) return;
    for (const program of programs()) {
      try {
        if (program.addInterface(ifindex, name)) ctx.err.write(`tcpscope: now also listening on ${name}\n`);
      } catch (e) {
        ctx.err.write(`tcpscope: cannot attach to new interface ${name}: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
  }, (message) => ctx.err.write(`tcpscope: ${message}\n`));
  if (ctx.signal.aborted) watch.close();
  else ctx.signal.addEventListener('abort', () => watch.close(), { once: true });
}
