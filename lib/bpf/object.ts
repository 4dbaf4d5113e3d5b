// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import path from 'node:path';
import { Btf } from './btf/parse';
import { ElfError } from './btf/elf';
import { checkBpfObject } from './btf/object-check';
import { BtfError } from './btf/types';
import { decoderFor, encoderFor, viewDecoderFor } from './btf/codec';
import { bytes, u32 } from './codec';
import type { Codec } from './codec';
import { BpfError, NotFoundError, NotSupportedError, VerifierError, call, translateError } from './errors';
import { bpfPrivilege, defaultBtfCustomPath } from './sys';
import { Link } from './link';
import { BpfMap, MapCodecs, MapType, PerCpuMap } from './map';
import { native } from './native';
import type { NativeMapInfo, NativeObject, NativeProgramInfo } from './native';
import { Program } from './program';
import { RecordDecoder, RecordReader, ReaderOptions, openPerfReader, openRingReader } from './ringbuf';
import type { RecordReader as Reader } from './ringbuf';

export interface OpenOptions {
  /** Object name libbpf uses as a prefix for internal maps; default: the file's base name. */
  name?: string;
  /** A BTF file describing the target kernel, for kernels without /sys/kernel/btf/vmlinux. */
  btfCustomPath?: string;
  /** Values for `const volatile` (.rodata) and other globals, set before load. */
  globals?: Record<string, unknown>;
  /** Programs not to load (e.g. kprobe alternatives on kernels without kprobes). */
  skipPrograms?: string[];
}

type GlobalSection = { mapName: string; section: string };

/**
 * A BPF ELF object: open, configure, load, attach, read.
 *
 * @example
 * using obj = BpfObject.open('build/bpf/syncount.bpf.o', { globals: { target_port: 8080 } });
 * obj.load();
 * obj.program('count_syn').attachTc('lo');
 * for (const [src, n] of obj.map('syn_by_source')) console.log(src, n);
 */
export class BpfObject implements Disposable {
  readonly path: string | undefined;
  private handle: NativeObject | undefined;
  private btfCache: Btf | null | undefined;
  private globalIndex: Map<string, GlobalSection & { offset: number; size: number; type: number }> | undefined;
  private loadedFlag = false;
  private readonly programs = new Map<string, Program>();
  private readonly mapCache = new Map<string, BpfMap<unknown, unknown>>();
  /** @internal attachments and readers to release on close() */
  readonly resources = new Set<{ close(): void } | Link>();

  private constructor(handle: NativeObject, path: string | undefined) {
    this.handle = handle;
    this.path = path;
  }

  /**
   * Opens an object from a file path or the bytes of an ELF file. The ELF and its BTF are
   * checked first (ElfError / BtfError): libbpf 1.1 trusts them and crashes on bad ones.
   */
  static open(source: string | Uint8Array, options: OpenOptions = {}): BpfObject {
    const what = typeof source === 'string' ? `open BPF object ${source}` : 'open BPF object';
    const image = typeof source === 'string' ? readObjectFile(source) : source;
    try {
      checkBpfObject(image);
      // libbpf parses a custom kernel BTF as trustingly as the object's own.
      if (options.btfCustomPath !== undefined) Btf.fromFile(options.btfCustomPath).validate();
    } catch (e) {
      if (e instanceof ElfError) throw new ElfError(`${what}: ${e.message}`, { cause: e });
      if (e instanceof BtfError) throw new BtfError(`${what}: ${e.message}`, { cause: e });
      throw e;
    }
    const nativeOptions: { name?: string; btfCustomPath?: string } = {};
    // libbpf names an object opened from a file after the file, up to the first dot;
    // the checked bytes are what it opens, under that same name.
    const name = options.name ?? (typeof source === 'string' ? path.basename(source).split('.')[0] : undefined);
    if (name) nativeOptions.name = name;
    const btfCustomPath = options.btfCustomPath ?? defaultBtfCustomPath();
    if (btfCustomPath !== undefined) nativeOptions.btfCustomPath = btfCustomPath;
    const handle = call(what, () => new (native().NativeObject)(image, nativeOptions));
    const obj = new BpfObject(handle, typeof source === 'string' ? source : undefined);
    try {
      for (const name of options.skipPrograms ?? []) obj.program(name).autoload = false;
      if (options.globals) obj.setGlobals(options.globals);
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  /** Opens, configures and loads in one call. */
  static load(source: string | Uint8Array, options: OpenOptions = {}): BpfObject {
    const obj = BpfObject.open(source, options);
    try {
      obj.load();
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  /** @internal */
  get native(): NativeObject {
    if (!this.handle) throw new Error('BPF object is closed');
    return this.handle;
  }

  get loaded(): boolean {
    return this.loadedFlag;
  }

  /** The object's own BTF (types of its maps, globals and events), or null without -g. */
  get btf(): Btf | null {
    if (this.btfCache === undefined) {
      const raw = this.native.btf();
      this.btfCache = raw ? Btf.parse(raw) : null;
    }
    return this.btfCache;
  }

  private requireBtf(what: string): Btf {
    const btf = this.btf;
    if (!btf) throw new BpfError(`${what}: the object has no BTF; compile it with clang -g`);
    return btf;
  }

  /** Loads every program (with autoload) and creates the maps. */
  load(): void {
    if (this.loadedFlag) throw new Error('BPF object is already loaded');
    try {
      this.native.load();
    } catch (e) {
      throw this.explainLoadError(translateError(e, `load ${this.path ?? 'BPF object'}`));
    }
    this.loadedFlag = true;
  }

  /** Names the failing program and, where privileges are not the cause, what is. */
  private explainLoadError(e: unknown): unknown {
    if (!(e instanceof BpfError)) return e;
    const failing = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(e.libbpfLog)?.[1];
    const section = failing ? this.native.programs().find((p) => p.name === failing)?.section ?? '' : '';
    if (failing && (e.code === 'EPERM' || e.code === 'ENOTSUPP' || e.code === 'EOPNOTSUPP') && bpfPrivilege().ok) {
      const kind = section.split('/')[0] ?? '';
      const advice = ['fentry', 'fexit', 'fmod_ret', 'lsm', 'freplace'].includes(kind)
        ? `This kernel refuses ${kind} programs (no BPF trampolines, or forbidden by its configuration). Use tp_btf or a tracepoint instead, or skip the program: BpfObject.open(path, { skipPrograms: ['${failing}'] }).`
        : `The kernel refused program '${failing}' (${section}) although this process has full BPF privileges: the program type or a helper it calls is not available on this kernel. Skip it with skipPrograms: ['${failing}'].`;
      return new NotSupportedError(`load ${this.path ?? 'BPF object'}: program '${failing}' (${section}): ${e.code}. ${advice}`, e);
    }
    if (failing && !(e instanceof VerifierError)) {
      return new BpfError(`${e.message}\n(failing program: '${failing}', section ${section})`, e);
    }
    return e;
  }

  programInfos(): NativeProgramInfo[] {
    return this.native.programs();
  }

  mapInfos(): NativeMapInfo[] {
    return this.native.maps();
  }

  /** The program named in C (the function name, not the section). */
  program(name: string): Program {
    let prog = this.programs.get(name);
    if (!prog) {
      const info = this.native.programs().find((p) => p.name === name);
      if (!info) {
        const known = this.native.programs().map((p) => p.name).join(', ');
        throw new NotFoundError(`no program named '${name}' in ${this.path ?? 'the object'} (programs: ${known || 'none'})`);
      }
      prog = new Program(this, info);
      this.programs.set(name, prog);
    }
    return prog;
  }

  private mapInfo(name: string): NativeMapInfo {
    const info = this.native.maps().find((m) => m.name === name);
    if (!info) {
      const known = this.native.maps().filter((m) => !m.internal).map((m) => m.name).join(', ');
      throw new NotFoundError(`no map named '${name}' in ${this.path ?? 'the object'} (maps: ${known || 'none'})`);
    }
    return info;
  }

  private requireLoaded(what: string): void {
    if (!this.loadedFlag) throw new Error(`${what}: call load() first`);
  }

  /** Key and value codecs from the map's BTF types; raw sized codecs without BTF. */
  private btfCodecs(info: NativeMapInfo): MapCodecs<unknown, unknown> {
    const btf = this.btf;
    const codecs: MapCodecs<unknown, unknown> = {};
    if (btf && info.btfKeyTypeId) codecs.key = encoderDecoder(btf, info.btfKeyTypeId);
    if (btf && info.btfValueTypeId) codecs.value = encoderDecoder(btf, info.btfValueTypeId);
    return codecs;
  }

  /**
   * A loaded map, typed by its BTF key/value types unless codecs are given.
   * Keys and values without BTF are numbers (4 bytes), bigints (8 bytes) or Uint8Array.
   */
  map<K = unknown, V = unknown>(name: string, codecs?: MapCodecs<K, V>): BpfMap<K, V> {
    this.requireLoaded(`map '${name}'`);
    if (!codecs) {
      const cached = this.mapCache.get(name);
      if (cached) return cached as BpfMap<K, V>;
    }
    const info = this.mapInfo(name);
    const fd = this.native.mapFd(name);
    const map = new BpfMap<K, V>(fd, info, codecs ?? (this.btfCodecs(info) as MapCodecs<K, V>));
    if (!codecs) this.mapCache.set(name, map as BpfMap<unknown, unknown>);
    return map;
  }

  /** A loaded per-CPU map: reads give one value per possible CPU. Throws for other map types. */
  perCpuMap<K = unknown, V = unknown>(name: string, codecs?: MapCodecs<K, V>): PerCpuMap<K, V> {
    return new PerCpuMap(this.map<K, V>(name, codecs));
  }

  /** Sets max_entries of a map before load (ring buffer size in bytes). */
  setMaxEntries(map: string, maxEntries: number): void {
    if (this.loadedFlag) throw new Error(`set max_entries of '${map}': the object is loaded already`);
    this.mapInfo(map);
    call(`set max_entries of '${map}'`, () => this.native.setMaxEntries(map, maxEntries));
  }

  /** The BTF decoder of a type of this object, e.g. 'conn_event' or 'struct conn_event'. */
  decoder<T = Record<string, unknown>>(typeName: string): RecordDecoder<T> & { size: number } {
    const btf = this.requireBtf(`decoder for ${typeName}`);
    return decoderFor(btf, typeName.replace(/^struct\s+/, '')) as RecordDecoder<T> & { size: number };
  }

  /** The decoder of `<ring>_record_type`'s pointee, as declared by TCPSCOPE_RINGBUF/PERFBUF. */
  private recordDecoder<T>(ring: string, lazy: boolean): RecordDecoder<T> | undefined {
    if (!this.btf) return undefined;
    const marker = this.globalSections().get(`${ring}_record_type`);
    if (!marker) return undefined;
    const btf = this.requireBtf(`records of '${ring}'`);
    const pointer = btf.resolve(marker.type);
    if (pointer.kind !== 'ptr') return undefined;
    return (lazy ? viewDecoderFor(btf, pointer.type) : decoderFor(btf, pointer.type)) as RecordDecoder<T>;
  }

  /** Where each global lives. The object's BTF and internal maps are fixed at open, so once. */
  private globalSections(): Map<string, GlobalSection & { offset: number; size: number; type: number }> {
    if (this.globalIndex) return this.globalIndex;
    const btf = this.requireBtf('globals');
    const out = new Map<string, GlobalSection & { offset: number; size: number; type: number }>();
    this.globalIndex = out;
    const sections = new Map(btf.datasecs().map((d) => [d.name, d]));
    for (const m of this.native.maps()) {
      if (!m.internal) continue;
      const dot = m.name.indexOf('.');
      if (dot < 0) continue;
      const section = m.name.slice(dot);
      const sec = sections.get(section);
      if (!sec) continue;
      for (const v of sec.vars) out.set(v.name, { mapName: m.name, section, offset: v.offset, size: v.size, type: v.type });
    }
    return out;
  }

  private globalVar(name: string): GlobalSection & { offset: number; size: number; type: number } {
    const v = this.globalSections().get(name);
    if (!v) {
      const known = [...this.globalSections().keys()].join(', ');
      throw new NotFoundError(`no global variable '${name}' in ${this.path ?? 'the object'} (globals: ${known || 'none'})`);
    }
    return v;
  }

  /**
   * Sets a global before load, type-checked against its BTF type. After load, .bss/.data
   * globals can still be written; .rodata is frozen by the kernel.
   */
  setGlobal(name: string, value: unknown): void {
    const v = this.globalVar(name);
    const btf = this.requireBtf('globals');
    const encoder = encoderFor(btf, v.type, { label: name });
    if (!this.loadedFlag) {
      const image = this.native.initialValue(v.mapName);
      if (!image) throw new BpfError(`global '${name}': section ${v.section} has no initial value`);
      try {
        encoder.encode(value as never, new DataView(image.buffer, image.byteOffset, image.byteLength), v.offset);
      } catch (e) {
        throw new TypeError((e as Error).message);
      }
      call(`set global '${name}'`, () => this.native.setInitialValue(v.mapName, image));
      return;
    }
    if (v.section.startsWith('.rodata')) {
      throw new Error(`global '${name}' is in ${v.section}, which is read-only once loaded: set it before load() (OpenOptions.globals)`);
    }
    const section = this.sectionMap(v.mapName);
    const image = section.get(0) as Uint8Array;
    try {
      encoder.encode(value as never, new DataView(image.buffer, image.byteOffset, image.byteLength), v.offset);
    } catch (e) {
      throw new TypeError(`global '${name}': ${(e as Error).message}`);
    }
    section.set(0, image);
  }

  setGlobals(values: Record<string, unknown>): void {
    for (const [name, value] of Object.entries(values)) this.setGlobal(name, value);
  }

  /** Reads a global: its initial value before load, the live value after. */
  global<T = unknown>(name: string): T {
    const v = this.globalVar(name);
    const btf = this.requireBtf('globals');
    const image = this.loadedFlag ? (this.sectionMap(v.mapName).get(0) as Uint8Array | undefined) : this.native.initialValue(v.mapName);
    if (!image) throw new BpfError(`global '${name}': cannot read section ${v.section}`);
    return decoderFor(btf, v.type).decode(new DataView(image.buffer, image.byteOffset, image.byteLength), v.offset) as T;
  }

  /**
   * A scalar global of a loaded .bss/.data section, read and written in place through
   * libbpf's memory mapping (no syscall, neighbours untouched); falls back to map lookups
   * where the kernel cannot map arrays. Undefined when the object has no such global.
   */
  private mappedScalar(name: string): { read(): bigint; write(value: number): void } | undefined {
    const v = this.btf ? this.globalSections().get(name) : undefined;
    if (!v || (v.size !== 4 && v.size !== 8)) return undefined;
    const info = this.mapInfo(v.mapName);
    const mapped = (info.flags & 1024) !== 0; // BPF_F_MMAPABLE
    const bytes = new Uint8Array(v.size);
    const view = new DataView(bytes.buffer);
    return {
      read: () => {
        const raw = mapped ? this.native.readMapped(v.mapName, v.offset, v.size) : (this.sectionMap(v.mapName).get(0) as Uint8Array).subarray(v.offset, v.offset + v.size);
        const d = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        return v.size === 8 ? d.getBigUint64(0, true) : BigInt(d.getUint32(0, true));
      },
      write: (value: number) => {
        if (v.size === 8) view.setBigUint64(0, BigInt(value), true);
        else view.setUint32(0, value, true);
        if (mapped) this.native.writeMapped(v.mapName, v.offset, bytes);
        else this.setGlobal(name, v.size === 8 ? BigInt(value) : value);
      },
    };
  }

  /** True when the object has a global of that name. */
  hasGlobal(name: string): boolean {
    return this.btf !== null && this.globalSections().has(name);
  }

  private sectionMap(mapName: string): BpfMap<number, Uint8Array> {
    const info = this.mapInfo(mapName);
    // Always raw bytes: a 4- or 8-byte section would otherwise decode as a number.
    return new BpfMap<number, Uint8Array>(this.native.mapFd(mapName), info, { key: u32, value: bytes(info.valueSize) });
  }

  /**
   * Reads a ring buffer map as an async iterator. With TCPSCOPE_RINGBUF, records decode to
   * objects of the declared record type (unless `raw` or another decoder is given) and
   * loss is counted (its `<name>_lost` counter). Other ring buffers give raw bytes.
   * `lazy: true` decodes to lazy views instead (viewDecoderFor): fields decode when read.
   */
  ringBuffer<T = Uint8Array>(name: string, options: ReaderOptions & { decoder?: RecordDecoder<T> | string; raw?: boolean; lazy?: boolean } = {}): RecordReader<T> {
    this.requireLoaded(`ring buffer '${name}'`);
    const info = this.mapInfo(name);
    if (info.type !== MapType.RINGBUF) throw new TypeError(`map '${name}' is a ${info.typeName}, not a ringbuf`);
    const decoder = typeof options.decoder === 'string' ? this.decoder<T>(options.decoder) : options.decoder ?? (options.raw ? undefined : this.recordDecoder<T>(name, options.lazy ?? false));
    const lost = this.mappedScalar(`${name}_lost`);
    const idle = this.mappedScalar(`${name}_reader_idle`);
    const init: Parameters<typeof openRingReader<T>>[2] = { options, capacityBytes: info.maxEntries, onClose: () => this.resources.delete(reader) };
    if (decoder) init.decoder = decoder;
    if (lost) init.lostCounter = () => Number(lost.read());
    if (idle) init.setIdle = () => idle.write(1);
    // TCPSCOPE_RINGBUF producers with a byte threshold wake the reader once that much waits
    // (tcpscope.h), even while it has not caught up: only then may it sleep with records left.
    const threshold = idle ? this.mappedScalar('tcpscope_wakeup_bytes')?.read() : undefined;
    if (threshold !== undefined && threshold > 0n) init.producerWakesAtBytes = Number(threshold);
    const reader: Reader<T> = openRingReader<T>(name, this.native.mapFd(name), init);
    this.resources.add(reader);
    return reader;
  }

  /**
   * Reads a BPF_MAP_TYPE_PERF_EVENT_ARRAY; lost counts the kernel's lost records. Records
   * decode to the type declared with TCPSCOPE_PERFBUF (unless `raw` or another decoder is
   * given), else they are raw bytes.
   */
  perfBuffer<T = Uint8Array>(name: string, options: ReaderOptions & { decoder?: RecordDecoder<T> | string; pagesPerCpu?: number; raw?: boolean } = {}): RecordReader<T> {
    this.requireLoaded(`perf buffer '${name}'`);
    const info = this.mapInfo(name);
    if (info.type !== MapType.PERF_EVENT_ARRAY) throw new TypeError(`map '${name}' is a ${info.typeName}, not a perf_event_array`);
    const decoder = typeof options.decoder === 'string' ? this.decoder<T>(options.decoder) : options.decoder ?? (options.raw ? undefined : this.recordDecoder<T>(name, false));
    const init: Parameters<typeof openPerfReader<T>>[3] = { options, onClose: () => this.resources.delete(reader) };
    if (decoder) init.decoder = decoder;
    const reader: Reader<T> = openPerfReader<T>(name, this.native.mapFd(name), options.pagesPerCpu ?? 64, init);
    this.resources.add(reader);
    return reader;
  }

  /** Detaches every link made from this object, closes its readers, frees it. */
  close(): void {
    if (!this.handle) return;
    const errors: unknown[] = [];
    for (const resource of [...this.resources]) {
      try {
        if (resource instanceof Link) resource.detach();
        else resource.close();
      } catch (e) {
        errors.push(e);
      }
    }
    this.resources.clear();
    for (const map of this.mapCache.values()) map.close();
    this.handle.close();
    this.handle = undefined;
    if (errors.length) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function readObjectFile(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`BPF object file ${file} does not exist (built objects live in build/bpf; run \`npm run build\`)`);
    if (code === 'EISDIR') throw new BpfError(`open BPF object ${file}: it is a directory; give the path of a .bpf.o file`, { errno: 21, code });
    throw new BpfError(`open BPF object ${file}: ${(e as Error).message}`, { errno: (e as NodeJS.ErrnoException).errno ?? 0, code: code ?? 'EUNKNOWN', cause: e });
  }
}

function encoderDecoder(btf: Btf, typeId: number): Codec<unknown> {
  const dec = decoderFor(btf, typeId);
  const enc = encoderFor(btf, typeId);
  return {
    size: dec.size,
    encode: (value, view, offset) => enc.encode(value as never, view, offset),
    decode: (view, offset) => dec.decode(view, offset),
  };
}
