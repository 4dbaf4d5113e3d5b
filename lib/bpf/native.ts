// SPDX-License-Identifier: MIT
// Typed view of the N-API addon. Nothing outside lib/bpf imports the addon directly.
import path from 'node:path';
import fs from 'node:fs';
import { packageRoot, prebuildDir } from './paths';

export interface NativeProgramInfo {
  name: string;
  section: string;
  type: number;
  typeName: string;
  expectedAttachType: number;
  attachTypeName: string;
  autoload: boolean;
  fd: number;
}

export interface NativeMapInfo {
  name: string;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal?: boolean;
  fd?: number;
  id?: number;
  btfValueTypeId: number;
  btfKeyTypeId: number;
}

export interface NativeAttachSpec {
  kind: string;
  [key: string]: string | number | boolean | undefined;
}

export interface NativeLinkDescription {
  kind: string;
  ifindex?: number;
  direction?: 'ingress' | 'egress';
  handle?: number;
  priority?: number;
  flags?: number;
  netlink?: boolean;
}

export interface NativeLink {
  detach(): void;
  describe(): NativeLinkDescription;
  pin(path: string): void;
  readonly fd: number;
  readonly kind: string;
  readonly attached: boolean;
}

export interface NativeObject {
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  btf(): Buffer | null;
  initialValue(map: string): Buffer | null;
  setInitialValue(map: string, value: Uint8Array): void;
  setAutoload(program: string, autoload: boolean): void;
  setMaxEntries(map: string, maxEntries: number): void;
  load(): string;
  programFd(program: string): number;
  mapFd(map: string): number;
  attach(program: string, spec: NativeAttachSpec): NativeLink;
  /** Reads/writes a loaded .bss/.data map through libbpf's mapping of it. */
  readMapped(map: string, offset: number, length: number): Buffer;
  writeMapped(map: string, offset: number, bytes: Uint8Array): void;
  close(): void;
}

export interface NativeRingReader {
  /**
   * The ring's data pages, mapped read-only and twice back to back; created once, detached by
   * close(). Never hand it (or a typed array over it) to user code: a write kills the process.
   */
  dataArea(): ArrayBuffer;
  /**
   * Commits the previous loan, then lends the committed records that follow (at most
   * maxBytes) in place: out = [start in dataArea(), bytes, records]; offsets are relative
   * to start. They stay in the ring until the next lend(), commitForSleep() or close().
   */
  lend(offsets: Uint32Array, lengths: Uint32Array, out: Uint32Array, maxBytes: number): number;
  /**
   * Before sleeping with records possibly waiting: gives the loan back (the producer wakes a
   * reader only once it has caught up) and clears the wake-ups already reported.
   */
  commitForSleep(): void;
  /**
   * Asks the native thread that holds the ring (started by another part of the addon, such
   * as native/capture.cc, through native/ringbuf.h) to consume what waits and end.
   */
  stopThread(): void;
  /** Returns within about a second whatever a native thread is doing. */
  close(): void;
  /** A native thread holds the ring (lend() and dataArea() refuse). */
  readonly threadRunning: boolean;
  /** Edge-triggered epoll fd that becomes readable on the producer's wake-ups. */
  readonly epollFd: number;
}

export interface NativePerfReader {
  consume(target: Uint8Array): number;
  close(): void;
  readonly epollFd: number;
  readonly lost: number;
}

export interface NativeFdWatcher {
  /** Arms the watcher once: readable, or `timeoutMs` passed, whichever first; it stops itself before calling back. */
  start(timeoutMs?: number): void;
  stop(): void;
  close(): void;
}

export interface NativeTestRunOptions {
  data?: Uint8Array;
  dataOutSize?: number;
  ctx?: Uint8Array;
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface NativeTestRunResult {
  retval: number;
  durationNs: number;
  data?: Buffer;
  ctx?: Buffer;
}

export interface NativeProgInfo {
  id: number;
  type: number;
  name: string;
  runCount: number;
  runTimeNs: number;
}

export interface NativeAddon {
  NativeObject: new (source: string | Uint8Array, options: { name?: string; btfCustomPath?: string; kernelLogLevel?: number }) => NativeObject;
  NativeRingReader: new (mapFd: number) => NativeRingReader;
  NativePerfReader: new (mapFd: number, pagesPerCpu: number) => NativePerfReader;
  /** onReady's status: < 0 a poll error, 0 readable, 1 timed out. */
  FdWatcher: new (fd: number, onReady: (status: number) => void) => NativeFdWatcher;
  mapLookup(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): boolean;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapNextKey(fd: number, key: Uint8Array | null, out: Uint8Array): boolean;
  mapDumpBatch(fd: number, keys: Uint8Array, values: Uint8Array, keySize: number, valueStride: number, capacity: number): number;
  mapInfo(fd: number): NativeMapInfo & { id: number };
  mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags: number): number;
  progInfo(fd: number): NativeProgInfo;
  progInfoById(id: number): NativeProgInfo | null;
  progQuery(target: number, attachType: number): number[];
  xdpQuery(ifindex: number): { skb: number; drv: number; hw: number };
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  testRun(fd: number, options: NativeTestRunOptions): NativeTestRunResult;
  numPossibleCpus(): number;
  ifNameToIndex(name: string): number;
  ifIndexToName(index: number): string | null;
  /** Returns 0 or a negative errno. */
  detachTcFilter(ifindex: number, ingress: boolean, handle: number, priority: number): number;
  /** Returns 0 or a negative errno (-ENOENT when another program is attached now). */
  detachXdp(ifindex: number, flags: number, expectedProgId: number): number;
}

let addon: NativeAddon | undefined;

/**
 * Addon candidates, in order: a build from source (`npm run build`, or an install where no
 * prebuild fitted), then the prebuilt one for this platform shipped in the package.
 */
export function addonCandidates(): string[] {
  return [path.join(packageRoot(), 'build', 'Release', 'tcpscope.node'), path.join(prebuildDir(), 'tcpscope.node')];
}

/** The loaded addon; loading is deferred so importing tcpscope never fails by itself. */
export function native(): NativeAddon {
  if (!addon) {
    const failures: string[] = [];
    for (const file of addonCandidates()) {
      if (!fs.existsSync(file)) continue;
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        addon = require(file) as NativeAddon;
        break;
      } catch (e) {
        failures.push(`${path.relative(packageRoot(), file)}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (!addon) {
      throw new Error(
        `tcpscope: no native addon loads on ${process.platform}-${process.arch}` +
          (failures.length ? ` (${failures.join('; ')})` : ' (none is built: build/Release/tcpscope.node is missing and there is no prebuild for it)') +
          '. Build it from source: `npm run build` in the tcpscope package (scripts/setup-debian.sh installs what it needs).',
      );
    }
  }
  return addon;
}
