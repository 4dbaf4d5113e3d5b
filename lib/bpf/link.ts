// SPDX-License-Identifier: MIT
import { call } from './errors';
import type { NativeLink } from './native';
import { forgetAttachment, recordAttachment } from './registry';

/** One attachment of a program. Detached by detach(), `using`, or when its object closes. */
export class Link implements Disposable {
  /** What holds the attachment: 'tracepoint', 'xdp', 'tcx', 'tc', 'cgroup', 'socket_filter'... */
  readonly kind: string;
  readonly program: string;
  private handle: NativeLink | undefined;
  private readonly onDetach: ((link: Link) => void) | undefined;
  private readonly registryFile: string | undefined;

  /** @internal */
  constructor(handle: NativeLink, program: string, programId: number, onDetach?: (link: Link) => void) {
    this.handle = handle;
    this.kind = handle.kind;
    this.program = program;
    this.onDetach = onDetach;
    this.registryFile = recordAttachment(handle.describe(), program, programId);
  }

  get attached(): boolean {
    return this.handle?.attached ?? false;
  }

  /** The link's fd, or -1 for attachments that have none (legacy tc, netlink XDP, socket filters). */
  get fd(): number {
    return this.handle?.fd ?? -1;
  }

  /** Pins a BPF link in bpffs so it outlives this process; `tcpscope cleanup` removes it. */
  pin(path: string): void {
    const handle = this.handle;
    if (!handle) throw new Error(`link of '${this.program}' is detached`);
    call(`pin link of '${this.program}'`, () => handle.pin(path));
  }

  detach(): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = undefined;
    this.onDetach?.(this);
    call(`detach '${this.program}' (${this.kind})`, () => handle.detach());
    forgetAttachment(this.registryFile);
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * @internal The links a program holds on each interface, for programs that follow interfaces
 * coming and going (`-i any`). `links` and `names` are live: the same array and map throughout,
 * so whoever holds them (a probe stream, a view class) sees interfaces added and removed.
 */
export class InterfaceLinks<Name> {
  /** Every link, on every interface, in the order they were made. */
  readonly links: Link[] = [];
  /** How each interface was named, by ifindex. */
  readonly names = new Map<number, Name>();
  private readonly byIndex = new Map<number, Link[]>();

  has(ifindex: number): boolean {
    return this.byIndex.has(ifindex);
  }

  /** Records the links made on an interface (false, recording nothing, when it has some already). */
  add(ifindex: number, name: Name, links: Link[]): boolean {
    if (this.byIndex.has(ifindex)) return false;
    this.byIndex.set(ifindex, links);
    this.names.set(ifindex, name);
    this.links.push(...links);
    return true;
  }

  /**
   * Forgets an interface that disappeared and releases its links; the kernel detached them with
   * the device, so detaching only closes their fds. Returns what it was named (undefined: not held).
   */
  remove(ifindex: number): { name: Name } | undefined {
    const links = this.byIndex.get(ifindex);
    if (!links) return undefined;
    const name = this.names.get(ifindex) as Name;
    this.byIndex.delete(ifindex);
    this.names.delete(ifindex);
    for (const link of links) {
      const at = this.links.indexOf(link);
      if (at >= 0) this.links.splice(at, 1);
      try { link.detach(); } catch { /* already detached by the kernel */ }
    }
    return { name };
  }
}
