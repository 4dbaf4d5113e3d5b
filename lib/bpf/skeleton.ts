// SPDX-License-Identifier: MIT
/**
 * Typed skeletons: what `tcpscope compile` generates next to a BPF object (as bpf2go and
 * `bpftool gen skeleton` do) is a spec type naming the object's maps, programs, rings and
 * globals, plus the object itself; this module turns that into properties, so a misspelt
 * name or a wrongly typed value is a compile error.
 *
 * @example
 * // port_watch.skel.ts (generated) declares PortWatchSpec and calls openSkeleton.
 * using skel = PortWatch.load({ rodata: { watched_port: 8080 } });
 * skel.programs.watch_port.attachTc('lo');
 * skel.maps.hits_by_port.get(8080);           // bigint | undefined
 * for await (const ev of skel.ringBuffers.events()) console.log(ev.sport);
 */
import { BpfObject } from './object';
import type { OpenOptions } from './object';
import { NotFoundError } from './errors';
import type { BpfMap, PerCpuMap } from './map';
import { MapType, PER_CPU_TYPES } from './map';
import type { Program } from './program';
import type { ReaderOptions, RecordReader } from './ringbuf';

/** What a generated skeleton declares about its object. */
export interface SkeletonSpec {
  /** Map name → `{ key, value }` types (ring and perf buffers are not here). */
  maps: object;
  /** Program (C function) name → `true`. */
  programs: object;
  /** Ring buffer name → record type. */
  ringBuffers: object;
  /** Perf event array name → record type. */
  perfBuffers: object;
  /** `const volatile` globals (.rodata): set before load. */
  rodata: object;
  /** Zero-initialised globals (.bss): live values after load. */
  bss: object;
  /** Initialised globals (.data): live values after load. */
  data: object;
}

/** Per-CPU maps (`perCpu: true` in the spec) read one value per possible CPU. */
type MapOf<E> = E extends { key: infer K; value: infer V; perCpu: true } ? PerCpuMap<K, V> : E extends { key: infer K; value: infer V } ? BpfMap<K, V> : never;

export interface SkeletonOptions<S extends SkeletonSpec> {
  /** `.rodata` values, set before load (the kernel freezes them). */
  rodata?: Partial<S['rodata']>;
  /** Initial `.bss` / `.data` values. */
  bss?: Partial<S['bss']>;
  data?: Partial<S['data']>;
  /** Programs not to load. */
  skipPrograms?: ReadonlyArray<keyof S['programs'] & string>;
  /** Entries (ring buffers: bytes) of maps, set before load. */
  maxEntries?: { [K in (keyof S['maps'] | keyof S['ringBuffers']) & string]?: number };
  /** A BTF file describing the target kernel, for kernels without /sys/kernel/btf/vmlinux. */
  btfCustomPath?: string;
  /** Another build of the object (a path or its bytes) instead of the one embedded in the skeleton. */
  object?: string | Uint8Array;
}

/** Per-reader options of a perf buffer. */
export type PerfBufferOptions = ReaderOptions & { pagesPerCpu?: number };

/**
 * An opened object with typed accessors. `load()` loads it; `close()` (or `using`)
 * detaches everything attached from it.
 */
export class Skeleton<S extends SkeletonSpec> implements Disposable {
  /** The underlying object, for what the skeleton does not cover. */
  readonly object: BpfObject;
  /** Maps by name, typed by their BTF key and value (after load). */
  readonly maps: { readonly [K in keyof S['maps']]: MapOf<S['maps'][K]> };
  /** Programs by C function name. */
  readonly programs: { readonly [K in keyof S['programs']]: Program };
  /** Ring buffers by name: each call opens a reader yielding decoded records (after load). */
  readonly ringBuffers: { readonly [K in keyof S['ringBuffers']]: (options?: ReaderOptions) => RecordReader<S['ringBuffers'][K]> };
  /** Perf event arrays by name: each call opens a reader yielding decoded records (after load). */
  readonly perfBuffers: { readonly [K in keyof S['perfBuffers']]: (options?: PerfBufferOptions) => RecordReader<S['perfBuffers'][K]> };
  /** `.rodata` globals: assign before load(); read any time. */
  readonly rodata: S['rodata'];
  /** `.bss` globals: the live values after load() (assigning writes them). */
  readonly bss: S['bss'];
  /** `.data` globals: the live values after load() (assigning writes them). */
  readonly data: S['data'];

  /** @internal use the generated `open()` / `load()` */
  constructor(object: BpfObject) {
    this.object = object;
    const maps: Record<string, unknown> = {};
    const rings: Record<string, unknown> = {};
    const perfs: Record<string, unknown> = {};
    for (const info of object.mapInfos()) {
      if (info.internal) continue;
      const name = info.name;
      if (info.type === MapType.RINGBUF) {
        rings[name] = (options: ReaderOptions = {}) => object.ringBuffer(name, options);
      } else if (info.type === MapType.PERF_EVENT_ARRAY) {
        perfs[name] = (options: PerfBufferOptions = {}) => object.perfBuffer(name, options);
      } else {
        const perCpu = PER_CPU_TYPES.has(info.type);
        Object.defineProperty(maps, name, { enumerable: true, get: () => (perCpu ? object.perCpuMap(name) : object.map(name)) });
      }
    }
    const programs: Record<string, unknown> = {};
    for (const p of object.programInfos()) {
      Object.defineProperty(programs, p.name, { enumerable: true, get: () => object.program(p.name) });
    }
    this.maps = Object.freeze(maps) as this['maps'];
    this.ringBuffers = Object.freeze(rings) as this['ringBuffers'];
    this.perfBuffers = Object.freeze(perfs) as this['perfBuffers'];
    this.programs = Object.freeze(programs) as this['programs'];
    this.rodata = globals(object, /^\.rodata/) as S['rodata'];
    this.bss = globals(object, /^\.bss/) as S['bss'];
    this.data = globals(object, /^\.data/) as S['data'];
  }

  get loaded(): boolean {
    return this.object.loaded;
  }

  /** Loads the programs and creates the maps. */
  load(): this {
    this.object.load();
    return this;
  }

  /** Detaches every link made from it, closes its readers and frees the object. */
  close(): void {
    this.object.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** An object whose properties read and write the globals of some sections. */
function globals(object: BpfObject, section: RegExp): object {
  const out: Record<string, unknown> = {};
  const btf = object.btf;
  for (const sec of btf ? btf.datasecs() : []) {
    if (!section.test(sec.name)) continue;
    for (const v of sec.vars) {
      Object.defineProperty(out, v.name, {
        enumerable: true,
        get: () => object.global(v.name),
        set: (value: unknown) => object.setGlobal(v.name, value),
      });
    }
  }
  return Object.seal(out);
}

/**
 * Opens a skeleton's object: the build for this machine's architecture from `objects`
 * (process.arch → base64 ELF), or `options.object`. Called by generated skeletons.
 */
export function openSkeleton<S extends SkeletonSpec>(name: string, objects: { readonly [arch: string]: string }, options: SkeletonOptions<S> = {}): Skeleton<S> {
  let source: string | Uint8Array;
  if (options.object !== undefined) {
    source = options.object;
  } else {
    const encoded = objects[process.arch];
    if (encoded === undefined) {
      const built = Object.keys(objects).join(', ') || 'no architecture';
      throw new NotFoundError(`${name}: the skeleton holds the object built for ${built}, not ${process.arch}: run tcpscope compile with --arch ${Object.keys(objects).concat(process.arch).map(compileArch).join(',')}`);
    }
    source = Buffer.from(encoded, 'base64');
  }
  const open: OpenOptions = { name };
  if (options.btfCustomPath !== undefined) open.btfCustomPath = options.btfCustomPath;
  if (options.skipPrograms) open.skipPrograms = [...options.skipPrograms];
  const object = BpfObject.open(source, open);
  try {
    for (const values of [options.rodata, options.bss, options.data]) {
      if (values) object.setGlobals(values as Record<string, unknown>);
    }
    for (const [map, n] of Object.entries(options.maxEntries ?? {})) {
      if (typeof n === 'number') object.setMaxEntries(map, n);
    }
    return new Skeleton<S>(object);
  } catch (e) {
    object.close();
    throw e;
  }
}

/** Opens and loads (see {@link openSkeleton}). */
export function loadSkeleton<S extends SkeletonSpec>(name: string, objects: { readonly [arch: string]: string }, options: SkeletonOptions<S> = {}): Skeleton<S> {
  const skel = openSkeleton<S>(name, objects, options);
  try {
    return skel.load();
  } catch (e) {
    skel.close();
    throw e;
  }
}

/** process.arch → the name `tcpscope compile --arch` takes. */
function compileArch(arch: string): string {
  return arch === 'x64' ? 'x86_64' : arch;
}
