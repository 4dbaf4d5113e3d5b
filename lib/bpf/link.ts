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
