// SPDX-License-Identifier: MIT
import { Codec, codecForSize } from './codec';
import { call } from './errors';
import { ensureBpffs } from './sys';
import { native } from './native';
import type { NativeMapInfo } from './native';

/** Runs `make` for a new fd; closes the fd if it throws (bad codecs, not a map...). */
function ownFd<T>(fd: number, make: () => T): T {
  try {
    return make();
  } catch (e) {
    native().closeFd(fd);
    throw e;
  }
}

/** Kernel map type numbers (enum bpf_map_type) the API treats specially. */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  RINGBUF: 27,
} as const;

/** Update flags for BpfMap.set (BPF_ANY, BPF_NOEXIST, BPF_EXIST). */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const;

/** @internal */
export const PER_CPU_TYPES: ReadonlySet<number> = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, 21 /* PERCPU_CGROUP_STORAGE */]);

export interface MapCodecs<K, V> {
  key?: Codec<K>;
  value?: Codec<V>;
}

/**
 * A BPF map with typed keys and values. Per-CPU maps are read through `PerCpuMap`
 * (`object.perCpuMap(name)`), whose values are one per possible CPU.
 *
 * @example
 * const counts = obj.map<number, bigint>('syn_count');
 * for (const [port, n] of counts) console.log(port, n);
 */
export class BpfMap<K = unknown, V = unknown> implements Iterable<[K, V]> {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly perCpu: boolean;
  readonly keyCodec: Codec<K>;
  readonly valueCodec: Codec<V>;
  /** Bytes one lookup returns: valueSize, or 8-byte-rounded valueSize per CPU. */
  private readonly valueStride: number;
  private readonly cpus: number;
  private readonly keyBuf: Uint8Array;
  private readonly keyView: DataView;
  private readonly valueBuf: Uint8Array;
  private readonly valueView: DataView;
  private fdValue: number;
  private readonly ownsFd: boolean;
  private dumpKeys: Uint8Array | undefined;
  private dumpValues: Uint8Array | undefined;

  /** @internal */
  constructor(fd: number, info: NativeMapInfo, codecs: MapCodecs<K, V>, ownsFd = false) {
    this.fdValue = fd;
    this.ownsFd = ownsFd;
    this.name = info.name;
    this.type = info.type;
    this.typeName = info.typeName;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.perCpu = PER_CPU_TYPES.has(info.type);
    this.cpus = this.perCpu ? native().numPossibleCpus() : 1;
    this.valueStride = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 : info.valueSize;
    this.keyCodec = codecs.key ?? (codecForSize(info.keySize) as unknown as Codec<K>);
    this.valueCodec = codecs.value ?? (codecForSize(info.valueSize) as unknown as Codec<V>);
    if (this.keyCodec.size !== info.keySize) {
      throw new TypeError(`map '${this.name}': key codec is ${this.keyCodec.size} bytes but the map's key is ${info.keySize} bytes`);
    }
    if (this.valueCodec.size !== info.valueSize) {
      throw new TypeError(`map '${this.name}': value codec is ${this.valueCodec.size} bytes but the map's value is ${info.valueSize} bytes`);
    }
    this.keyBuf = new Uint8Array(Math.max(info.keySize, 1));
    this.keyView = new DataView(this.keyBuf.buffer);
    this.valueBuf = new Uint8Array(Math.max(this.valueStride * this.cpus, 1));
    this.valueView = new DataView(this.valueBuf.buffer);
  }

  /** Opens a map pinned in bpffs. */
  static openPinned<K = unknown, V = unknown>(path: string, codecs: MapCodecs<K, V> = {}): BpfMap<K, V> {
    ensureBpffs(path);
    const fd = call(`open pinned map ${path}`, () => native().objGet(path));
    return ownFd(fd, () => new BpfMap<K, V>(fd, call(`inspect pinned map ${path}`, () => native().mapInfo(fd)), codecs, true));
  }

  /** Creates a map that belongs to no object (for tests and user-space-only state). */
  static create<K = unknown, V = unknown>(spec: { type: number; name: string; keySize: number; valueSize: number; maxEntries: number; flags?: number }, codecs: MapCodecs<K, V> = {}): BpfMap<K, V> {
    const fd = call(`create map '${spec.name}'`, () => native().mapCreate(spec.type, spec.name, spec.keySize, spec.valueSize, spec.maxEntries, spec.flags ?? 0));
    return ownFd(fd, () => new BpfMap<K, V>(fd, call(`inspect map '${spec.name}'`, () => native().mapInfo(fd)), codecs, true));
  }

  get fd(): number {
    if (this.fdValue < 0) throw new Error(`map '${this.name}' is closed`);
    return this.fdValue;
  }

  private encodeKey(key: K): Uint8Array {
    try {
      this.keyCodec.encode(key, this.keyView, 0);
    } catch (e) {
      throw new TypeError(`map '${this.name}' key: ${(e as Error).message}`);
    }
    return this.keyBuf;
  }

  private encodeValue(value: V | V[]): Uint8Array {
    try {
      if (this.perCpu) {
        const values = Array.isArray(value) ? (value as V[]) : new Array<V>(this.cpus).fill(value as V);
        if (values.length !== this.cpus) throw new TypeError(`a per-CPU map takes ${this.cpus} values (one per possible CPU), got ${values.length}`);
        this.valueBuf.fill(0);
        values.forEach((v, cpu) => this.valueCodec.encode(v, this.valueView, cpu * this.valueStride));
      } else {
        this.valueCodec.encode(value as V, this.valueView, 0);
      }
    } catch (e) {
      throw new TypeError(`map '${this.name}' value: ${(e as Error).message}`);
    }
    return this.valueBuf;
  }

  private decodeValue(view: DataView, offset: number): V | V[] {
    if (!this.perCpu) return this.valueCodec.decode(view, offset);
    const out: V[] = new Array<V>(this.cpus);
    for (let cpu = 0; cpu < this.cpus; cpu++) out[cpu] = this.valueCodec.decode(view, offset + cpu * this.valueStride);
    return out;
  }

  /** A per-CPU map's single-value reads would hide all CPUs but one: point at PerCpuMap. */
  private refusePerCpu(what: string): void {
    if (this.perCpu) throw new TypeError(`map '${this.name}' is a per-CPU map (${this.typeName}): ${what} gives one value per CPU through object.perCpuMap('${this.name}')`);
  }

  /** The value for `key`, or undefined. */
  get(key: K): V | undefined {
    this.refusePerCpu('get()');
    const found = call(`lookup in map '${this.name}'`, () => native().mapLookup(this.fd, this.encodeKey(key), this.valueBuf));
    return found ? (this.decodeValue(this.valueView, 0) as V) : undefined;
  }

  /** @internal PerCpuMap.get */
  getPerCpu(key: K): V[] | undefined {
    if (!this.perCpu) throw new TypeError(`map '${this.name}' (${this.typeName}) is not a per-CPU map`);
    const found = call(`lookup in map '${this.name}'`, () => native().mapLookup(this.fd, this.encodeKey(key), this.valueBuf));
    return found ? (this.decodeValue(this.valueView, 0) as V[]) : undefined;
  }

  has(key: K): boolean {
    return call(`lookup in map '${this.name}'`, () => native().mapLookup(this.fd, this.encodeKey(key), this.valueBuf));
  }

  /** Sets `key` to `value`. flags: UpdateFlags.ANY | NOEXIST | EXIST. */
  set(key: K, value: V, flags: number = UpdateFlags.ANY): this {
    const k = this.encodeKey(key);
    const v = this.encodeValue(value);
    call(`update map '${this.name}'`, () => native().mapUpdate(this.fd, k, v, flags));
    return this;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: K): boolean {
    return call(`delete from map '${this.name}'`, () => native().mapDelete(this.fd, this.encodeKey(key)));
  }

  /** Keys in kernel order (get_next_key). Entries deleted meanwhile may restart a hash walk. */
  *keys(): IterableIterator<K> {
    const current = new Uint8Array(Math.max(this.keySize, 1));
    const next = new Uint8Array(current.length);
    const nextView = new DataView(next.buffer);
    let first = true;
    for (;;) {
      const more = call(`iterate map '${this.name}'`, () => native().mapNextKey(this.fd, first ? null : current, next));
      if (!more) return;
      first = false;
      current.set(next);
      yield this.keyCodec.decode(nextView, 0);
    }
  }

  /** Entries one lookup at a time; `entries()` batches when the kernel can. */
  *[Symbol.iterator](): IterableIterator<[K, V]> {
    this.refusePerCpu('iteration');
    for (const key of this.keys()) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * Every entry, read in batches (BPF_MAP_LOOKUP_BATCH) where the kernel and map type allow,
   * else by iteration.
   */
  entries(): Array<[K, V]> {
    this.refusePerCpu('entries()');
    return this.allEntries() as Array<[K, V]>;
  }

  /** @internal PerCpuMap.entries */
  perCpuEntries(): Array<[K, V[]]> {
    if (!this.perCpu) throw new TypeError(`map '${this.name}' (${this.typeName}) is not a per-CPU map`);
    return this.allEntries() as Array<[K, V[]]>;
  }

  private allEntries(): Array<[K, V | V[]]> {
    const raw = this.dumpRaw();
    if (!raw) {
      const out: Array<[K, V | V[]]> = [];
      for (const key of this.keys()) {
        const value = this.perCpu ? this.getPerCpu(key) : this.get(key);
        if (value !== undefined) out.push([key, value]);
      }
      return out;
    }
    const out: Array<[K, V | V[]]> = new Array(raw.count);
    const keyView = new DataView(raw.keys.buffer, raw.keys.byteOffset);
    const valueView = new DataView(raw.values.buffer, raw.values.byteOffset);
    const stride = this.valueStride * this.cpus;
    for (let i = 0; i < raw.count; i++) {
      out[i] = [this.keyCodec.decode(keyView, i * this.keySize), this.decodeValue(valueView, i * stride)];
    }
    return out;
  }

  /**
   * All keys and values as two flat byte arrays, in one kernel batch walk; null where batch
   * lookup is unsupported. For bulk readers that decode lazily. The arrays are reused by
   * the next dumpRaw() of this map: copy what must outlive it.
   */
  dumpRaw(): { count: number; keys: Uint8Array; values: Uint8Array } | null {
    const capacity = this.maxEntries;
    const stride = this.valueStride * this.cpus;
    // Reused: fresh multi-megabyte buffers would be faulted in page by page during the copy.
    if (!this.dumpKeys) {
      this.dumpKeys = new Uint8Array(capacity * this.keySize);
      this.dumpValues = new Uint8Array(capacity * stride);
    }
    const keys = this.dumpKeys;
    const values = this.dumpValues!;
    const count = call(`batch lookup in map '${this.name}'`, () => native().mapDumpBatch(this.fd, keys, values, this.keySize, stride, capacity));
    if (count < 0) return null;
    return { count, keys: keys.subarray(0, count * this.keySize), values: values.subarray(0, count * stride) };
  }

  /** Deletes every entry. */
  clear(): void {
    for (const key of [...this.keys()]) this.delete(key);
  }

  /** Pins the map in bpffs (mounted on demand) so other processes can open it. */
  pin(path: string): void {
    ensureBpffs(path);
    call(`pin map '${this.name}' at ${path}`, () => native().objPin(this.fd, path));
  }

  /** Closes the fd if this map opened it itself (pinned or created). */
  close(): void {
    if (this.ownsFd && this.fdValue >= 0) native().closeFd(this.fdValue);
    this.fdValue = -1;
  }
}

/**
 * A per-CPU map (PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE): each key
 * holds one value per possible CPU, which programs update without atomics. Reads give the
 * array; sum it for a total.
 *
 * @example
 * const stats = obj.perCpuMap<number, bigint>('drops');
 * const total = (stats.get(0) ?? []).reduce((a, b) => a + b, 0n);
 */
export class PerCpuMap<K = unknown, V = unknown> implements Iterable<[K, V[]]> {
  /** @internal use BpfObject.perCpuMap or PerCpuMap.of */
  constructor(
    /** The map underneath, for what PerCpuMap does not cover (fd, pin, dumpRaw). */
    readonly map: BpfMap<K, V>,
  ) {
    if (!map.perCpu) throw new TypeError(`map '${map.name}' (${map.typeName}) is not a per-CPU map: read it with object.map('${map.name}')`);
  }

  /** Wraps a per-CPU BpfMap (opened pinned or created); throws for other map types. */
  static of<K, V>(map: BpfMap<K, V>): PerCpuMap<K, V> {
    return new PerCpuMap(map);
  }

  get name(): string {
    return this.map.name;
  }

  /** One value per possible CPU, or undefined when `key` is absent. */
  get(key: K): V[] | undefined {
    return this.map.getPerCpu(key);
  }

  /** Sets every CPU's value: one value for all, or exactly one per possible CPU. */
  set(key: K, value: V | readonly V[], flags: number = UpdateFlags.ANY): this {
    // encodeValue spreads one value over every CPU or takes one per CPU.
    this.map.set(key, value as V, flags);
    return this;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  /** Every entry, batched where the kernel allows. */
  entries(): Array<[K, V[]]> {
    return this.map.perCpuEntries();
  }

  *[Symbol.iterator](): IterableIterator<[K, V[]]> {
    for (const key of this.map.keys()) {
      const values = this.map.getPerCpu(key);
      if (values !== undefined) yield [key, values];
    }
  }

  clear(): void {
    this.map.clear();
  }
}
