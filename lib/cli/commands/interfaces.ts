// SPDX-License-Identifier: MIT
// `-i IFACE` as the packet commands read it: names (repeatable, comma-separated) or `any`,
// every interface that is up now and, followed through rtnetlink, each one created later.
import { upInterfaces } from '../../net/interfaces';
import { watchLinks } from '../../net/link-watch';
import type { LinkFollower, LinkNotice } from '../../net/link-watch';
import { interfaceIndex } from '../../bpf/netif';
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
 * Attaches each of `followers()` (by what it is: packets, detect, guard) to each interface
 * created from now on, and lets them go of one removed, until the command stops; says so on
 * stderr. Interfaces up now that none follows yet are caught up at once, so one created
 * between the command's start and this call is not missed.
 */
export function followInterfaces(ctx: CommandContext, followers: () => Partial<Record<string, LinkFollower>>): void {
  const onLink = ({ ifindex, name, deleted }: LinkNotice): void => {
    if (ctx.signal.aborted) return;
    const done: string[] = [];
    for (const [what, follower] of Object.entries(followers())) {
      if (!follower) continue;
      try {
        if (deleted ? follower.removeInterface(ifindex) : follower.addInterface(ifindex, name)) done.push(what);
      } catch (e) {
        ctx.err.write(`tcpscope: ${what}: cannot attach to new interface ${name}: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
    if (done.length) ctx.err.write(deleted ? `tcpscope: ${name} is gone: detached (${done.join(', ')})\n` : `tcpscope: now also listening on ${name} (${done.join(', ')})\n`);
  };
  const watch = watchLinks(onLink, (message) => ctx.err.write(`tcpscope: ${message}\n`));
  if (ctx.signal.aborted) {
    watch.close();
    return;
  }
  ctx.signal.addEventListener('abort', () => watch.close(), { once: true });
  for (const name of upInterfaces()) {
    const ifindex = interfaceIndexOf(name);
    if (ifindex !== undefined) onLink({ ifindex, name, deleted: false });
  }
}

/** An interface's index, or undefined when it is gone already. */
function interfaceIndexOf(name: string): number | undefined {
  try {
    return interfaceIndex(name);
  } catch {
    return undefined;
  }
}
