// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import path from 'node:path';
import type { Socket } from 'node:net';
import { BpfError, NotSupportedError, call, translateError } from './errors';
import { Link } from './link';
import { native } from './native';
import type { NativeAttachSpec, NativeObject, NativeProgramInfo, NativeProgInfo } from './native';
import { InterfaceRef, interfaceIndex } from './netif';
import { cgroup2Root, ensureTracefs } from './sys';

/** What a Program needs of its BpfObject (an interface, so program.ts does not import object.ts). */
export interface ProgramOwner {
  readonly native: NativeObject;
  readonly loaded: boolean;
  readonly resources: Set<{ close(): void } | Link>;
}

export type XdpMode = 'auto' | 'skb' | 'native' | 'hw';

export interface XdpOptions {
  /** skb (generic), native (driver) or hw (offload); auto lets the kernel choose. */
  mode?: XdpMode;
  /** Use the netlink API instead of a BPF link (old kernels; survives the process). */
  netlink?: boolean;
}

export interface TcOptions {
  direction?: 'ingress' | 'egress';
  /** tcx (kernel 6.6+, a BPF link) or clsact (tc filters); auto tries tcx first. */
  mechanism?: 'auto' | 'tcx' | 'clsact';
  /** clsact filter priority and handle (0: kernel picks). */
  priority?: number;
  handle?: number;
}

export interface UprobeOptions {
  /** Symbol to resolve in `binary` (ELF symbol table). */
  function?: string;
  offset?: number;
  pid?: number;
  retprobe?: boolean;
}

export interface TestRunOptions {
  /** Packet bytes for skb/XDP programs. */
  data?: Uint8Array;
  /** Context for the program (e.g. struct __sk_buff). */
  ctx?: Uint8Array;
  repeat?: number;
  dataOutSize?: number;
  flags?: number;
  cpu?: number;
}

export interface TestRunResult {
  retval: number;
  /** Average kernel time per run in ns, as BPF_PROG_TEST_RUN reports it. */
  durationNs: number;
  data: Uint8Array | undefined;
  ctx: Uint8Array | undefined;
}

const XDP_FLAGS: Record<XdpMode, number> = { auto: 0, skb: 1 << 1, native: 1 << 2, hw: 1 << 3 };

/** One program of a BpfObject. */
export class Program {
  readonly name: string;
  readonly section: string;
  readonly typeName: string;
  private readonly object: ProgramOwner;

  /** @internal */
  constructor(object: ProgramOwner, info: NativeProgramInfo) {
    this.object = object;
    this.name = info.name;
    this.section = info.section;
    this.typeName = info.typeName;
  }

  /** Whether load() loads this program. Set false before load to skip it. */
  get autoload(): boolean {
    return this.object.native.programs().find((p) => p.name === this.name)?.autoload ?? false;
  }
  set autoload(value: boolean) {
    call(`set autoload of '${this.name}'`, () => this.object.native.setAutoload(this.name, value));
  }

  get fd(): number {
    const fd = this.object.native.programFd(this.name);
    if (fd < 0) throw new Error(`program '${this.name}' is not loaded${this.object.loaded ? ' (autoload was off)' : ': call load() first'}`);
    return fd;
  }

  /** Kernel statistics (run count and time need kernel.bpf_stats_enabled=1). */
  info(): NativeProgInfo {
    return call(`program info of '${this.name}'`, () => native().progInfo(this.fd));
  }

  private attachWith(spec: NativeAttachSpec): Link {
    void this.fd; // fails clearly when not loaded
    if (needsTracefs(spec.kind === 'auto' ? this.section.split('/')[0] ?? '' : spec.kind)) ensureTracefs();
    let handle;
    try {
      handle = this.object.native.attach(this.name, spec);
    } catch (e) {
      throw explainAttachError(translateError(e, `attach '${this.name}' (${spec.kind})`), spec, this.section);
    }
    const link = new Link(handle, this.name, this.info().id, (l) => this.object.resources.delete(l));
    this.object.resources.add(link);
    return link;
  }

  /** Attaches as the SEC() name says (tracepoint/, tp_btf/, kprobe/, uprobe/, fentry/, cgroup...). */
  attach(): Link {
    return this.attachWith({ kind: 'auto' });
  }

  attachTracepoint(category: string, name: string): Link {
    return this.attachWith({ kind: 'tracepoint', category, name });
  }

  attachRawTracepoint(name: string): Link {
    return this.attachWith({ kind: 'raw_tracepoint', name });
  }

  /** tp_btf, fentry, fexit and fmod_ret programs: the target comes from the SEC() name. */
  attachTracing(): Link {
    return this.attachWith({ kind: 'tracing' });
  }

  attachKprobe(fn: string, options: { retprobe?: boolean; offset?: number } = {}): Link {
    return this.attachWith({ kind: 'kprobe', function: fn, retprobe: options.retprobe ?? false, offset: options.offset ?? 0 });
  }

  /** Attaches to a user-space function of `binary` (a path), in every process or in `pid`. */
  attachUprobe(binary: string, options: UprobeOptions = {}): Link {
    if (!fs.existsSync(binary)) throw new BpfError(`uprobe target ${binary} does not exist`);
    if (options.function === undefined && options.offset === undefined) throw new TypeError('attachUprobe needs a function name or an offset');
    return this.attachWith({
      kind: 'uprobe',
      binary: path.resolve(binary),
      function: options.function ?? '',
      offset: options.offset ?? 0,
      pid: options.pid ?? -1,
      retprobe: options.retprobe ?? false,
    });
  }

  attachXdp(iface: InterfaceRef, options: XdpOptions = {}): Link {
    const mode = options.mode ?? 'auto';
    if (!(mode in XDP_FLAGS)) throw new TypeError(`XDP mode must be one of ${Object.keys(XDP_FLAGS).join(', ')}, got '${mode}'`);
    return this.attachWith({ kind: 'xdp', ifindex: interfaceIndex(iface), flags: XDP_FLAGS[mode], netlink: options.netlink ?? false });
  }

  attachTc(iface: InterfaceRef, options: TcOptions = {}): Link {
    const direction = options.direction ?? 'ingress';
    if (direction !== 'ingress' && direction !== 'egress') throw new TypeError(`tc direction must be 'ingress' or 'egress', got '${String(direction)}'`);
    const mechanism = options.mechanism ?? 'auto';
    if (!['auto', 'tcx', 'clsact'].includes(mechanism)) throw new TypeError(`tc mechanism must be auto, tcx or clsact, got '${mechanism}'`);
    return this.attachWith({ kind: 'tc', ifindex: interfaceIndex(iface), direction, mechanism, priority: options.priority ?? 0, handle: options.handle ?? 0 });
  }

  /**
   * Attaches a cgroup program (cgroup_skb, cgroup/sock*, sock_ops, sockopt...) to a cgroup v2
   * directory; default: the root of the unified hierarchy.
   */
  attachCgroup(cgroupPath?: string): Link {
    const dir = cgroupPath ?? cgroup2Root();
    if (!fs.existsSync(dir)) throw new BpfError(`cgroup ${dir} does not exist (cgroup v2 is mounted at ${cgroup2Root()})`);
    return this.attachWith({ kind: 'cgroup', path: dir });
  }

  /** Attaches a socket filter to a connected Node socket (or a raw fd). */
  attachSocket(socket: Socket | number): Link {
    const fd = typeof socket === 'number' ? socket : socketFd(socket);
    return this.attachWith({ kind: 'socket', fd });
  }

  /** Runs the program once or `repeat` times on given input (BPF_PROG_TEST_RUN). */
  testRun(options: TestRunOptions = {}): TestRunResult {
    const r = call(`test run of '${this.name}'`, () => native().testRun(this.fd, options));
    return { retval: r.retval, durationNs: r.durationNs, data: r.data, ctx: r.ctx };
  }
}

function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new TypeError('the socket has no file descriptor (is it connected and not yet closed?)');
  return fd;
}

// libbpf finds a tracepoint's id in tracefs; a fresh machine may not have it mounted.
function needsTracefs(kind: string): boolean {
  return kind === 'tracepoint' || kind === 'tp';
}

/** 'program NAME (id N) of pid P (COMM)' for the XDP program on an interface, when found. */
function xdpHolder(ifindex: number): string | undefined {
  try {
    const ids = native().xdpQuery(ifindex);
    const id = ids.drv || ids.skb || ids.hw;
    if (!id) return undefined;
    const name = native().progInfoById(id)?.name ?? '';
    let owner = '';
    // A process holds the program (or the XDP link) through an fd whose fdinfo names it.
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let fds: string[];
      try { fds = fs.readdirSync(`/proc/${pid}/fdinfo`); } catch { continue; }
      if (fds.some((fd) => { try { return new RegExp(`^prog_id:\\s+${id}$`, 'm').test(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')); } catch { return false; } })) {
        let comm = '';
        try { comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone */ }
        owner = ` of pid ${pid}${comm ? ` (${comm})` : ''}`;
        break;
      }
    }
    return `program ${name ? `'${name}' ` : ''}(id ${id})${owner}`;
  } catch {
    return undefined;
  }
}

function explainAttachError(e: unknown, spec: NativeAttachSpec, section: string): unknown {
  if (!(e instanceof BpfError)) return e;
  const kind = spec.kind === 'auto' ? section.split('/')[0] : spec.kind;
  const noKprobes = !fs.existsSync('/sys/bus/event_source/devices/kprobe') && !fs.existsSync('/sys/kernel/tracing/kprobe_events') && !fs.existsSync('/sys/kernel/debug/tracing/kprobe_events');
  if ((kind === 'kprobe' || kind === 'kretprobe' || kind === 'ksyscall' || kind === 'kretsyscall') && noKprobes) {
    return new NotSupportedError(`${e.message}\nThis kernel has no kprobes (CONFIG_KPROBES / CONFIG_KPROBE_EVENTS are off): use a tracepoint, tp_btf, XDP, tc, cgroup or sock_ops program instead.`, e);
  }
  if ((kind === 'fentry' || kind === 'fexit' || kind === 'fmod_ret' || kind === 'tracing') && (e.code === 'EPERM' || e.code === 'ENOTSUPP' || e.code === 'EOPNOTSUPP')) {
    return new NotSupportedError(`${e.message}\nThis kernel refuses fentry/fexit attachment (${e.code}): it lacks BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) or forbids them. Use tp_btf or a tracepoint instead.`, e);
  }
  if (spec.kind === 'tc' && spec['mechanism'] === 'tcx' && e.code === 'EINVAL') {
    return new NotSupportedError(`${e.message}\nThis kernel has no tcx (it came in Linux 6.6): attach with { mechanism: 'clsact' }, or 'auto', which falls back to clsact.`, e);
  }
  if (e.code === 'ENODEV' && (spec.kind === 'xdp' || spec.kind === 'tc')) {
    return new BpfError(`${e.message}\nThe interface disappeared or does not support this attach mode.`, e);
  }
  if (spec.kind === 'xdp' && e.code === 'EBUSY') {
    const holder = typeof spec['ifindex'] === 'number' ? xdpHolder(spec['ifindex']) : undefined;
    return new BpfError(`${e.message}\nXDP runs one program per interface and ${holder ?? 'another program'} holds it (two \`--xdp\` captures cannot share an interface; tcpscope has no XDP dispatcher). Capture at tc instead (leave out --xdp): any number of tc captures, tcpdump's included, share an interface. Or stop that program first; if its process was killed, \`tcpscope cleanup\` removes it.`, e);
  }
  return e;
}
