// SPDX-License-Identifier: MIT
// The shape every built-in probe shares: a loaded object, its links, one ring buffer read
// as typed events, stats, and a close that releases it all.
import { BpfObject, OpenOptions } from '../bpf/object';
import type { RecordReader, ReaderOptions, ReaderStats } from '../bpf/ringbuf';
import type { Link } from '../bpf/link';
import { builtObjectPath } from '../bpf/paths';

export interface ProbeOptions {
  /** Stops the probe when aborted. */
  signal?: AbortSignal;
  /** Longest delay between an event and its delivery, in ms (reader wake-up timer). Default 10. */
  latencyMs?: number;
  /** Ring buffer size in bytes (power of two). */
  ringBytes?: number;
  /**
   * Bytes waiting in the ring before the kernel wakes the reader ahead of `latencyMs`
   * (default 64 KiB). Each wake-up costs the reader CPU; with a long latencyMs, raise it so
   * a busy ring is read in a few large batches (keep it well below ringBytes).
   */
  wakeupBytes?: number;
}

/** Default wake-up threshold: the reader is woken when this many bytes wait. */
export const DEFAULT_WAKEUP_BYTES = 64 * 1024;

export interface ProbeSpec<Raw, Event> {
  /** Built object name: build/bpf/<object>.bpf.o */
  object: string;
  /** Ring buffer map read for events. */
  ring: string;
  open?: OpenOptions;
  /** Called after load; returns the links it made (closed with the probe). */
  attach(obj: BpfObject): Link[];
  /** Turns a decoded record into the public event; undefined drops it. */
  toEvent(raw: Raw): Event | undefined;
  /**
   * Records reach toEvent as lazy views (viewDecoderFor): a field is decoded when toEvent
   * (or the event it returns, see lazyEvents) reads it.
   */
  lazy?: boolean;
}

/** How each field of an event is computed from its raw record, when read. */
export type EventFields<Raw, Event> = { readonly [K in keyof Event]-?: (raw: Raw) => Event[K] };

/** An event's fields as a plain object (lazy events are classes whose fields are getters). */
export function plainEvent<Event extends object>(event: Event): Event {
  const toJSON = (event as { toJSON?: () => Event }).toJSON;
  return typeof toJSON === 'function' ? toJSON.call(event) : event;
}

const RAW: unique symbol = Symbol('tcpscope.event.raw');

/**
 * A factory of lazy events: each event holds its raw record and computes a field (a string
 * address, a state name, a Date) only when read, every time it is read. JSON.stringify and
 * util.inspect see every field (toJSON); a spread ({ ...event }) sees none: use toJSON().
 */
export function lazyEvents<Raw, Event extends object>(name: string, fields: EventFields<Raw, Event>): (raw: Raw) => Event & { toJSON(): Event } {
  const keys = Object.keys(fields) as (keyof Event & string)[];
  class LazyEvent {
    readonly [RAW]: Raw;
    constructor(raw: Raw) {
      this[RAW] = raw;
    }
    toJSON(): Event {
      const out = {} as Event;
      for (const key of keys) out[key] = (this as unknown as Event)[key];
      return out;
    }
    [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: object, inspect: (v: unknown, o: object) => string): string {
      return `${name} ${inspect(this.toJSON(), options)}`;
    }
  }
  for (const key of keys) {
    const get = fields[key];
    Object.defineProperty(LazyEvent.prototype, key, { get(this: LazyEvent) { return get(this[RAW]); }, enumerable: true, configurable: true });
  }
  Object.defineProperty(LazyEvent, 'name', { value: name });
  return (raw) => new LazyEvent(raw) as unknown as Event & { toJSON(): Event };
}

/**
 * A running probe: async iterable of events, stats(), close().
 *
 * @example
 * await using probe = await connections();
 * for await (const c of probe) console.log(c.state);
 */
export class ProbeStream<Raw, Event> implements AsyncIterable<Event>, AsyncDisposable {
  readonly object: BpfObject;
  readonly links: Link[];
  private readonly reader: RecordReader<Raw>;
  private readonly toEvent: (raw: Raw) => Event | undefined;
  private closed = false;

  /** @internal use openProbe */
  constructor(object: BpfObject, links: Link[], reader: RecordReader<Raw>, toEvent: (raw: Raw) => Event | undefined) {
    this.object = object;
    this.links = links;
    this.reader = reader;
    this.toEvent = toEvent;
  }

  /** Events in batches: one array per kernel read (the fast path for high rates). */
  batches(): AsyncIterableIterator<Event[]> {
    return this.reader.mapBatches(
      'batches()',
      (batch) => {
        if (batch.count === 0) return undefined;
        const events: Event[] = [];
        for (const raw of this.reader.decodeBatch(batch)) {
          const event = this.toEvent(raw);
          if (event !== undefined) events.push(event);
        }
        return events.length ? events : undefined;
      },
      () => this.close(),
    );
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Event> {
    for await (const events of this.batches()) {
      for (const event of events) yield event;
    }
  }

  /** Events delivered and lost so far. */
  stats(): ReaderStats {
    return this.reader.stats();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Detaches everything; idempotent. Events already read stay valid. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.close();
    this.object.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/** The wake-up threshold for a ring of `ringBytes` (undefined: the object's own size). */
export function wakeupBytesFor(options: Pick<ProbeOptions, 'wakeupBytes' | 'ringBytes'>): number {
  const bytes = options.wakeupBytes ?? DEFAULT_WAKEUP_BYTES;
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffffffff) throw new RangeError(`wakeupBytes must be an integer from 0 to 2^32-1, got ${bytes}`);
  if (options.wakeupBytes !== undefined && options.ringBytes !== undefined && bytes >= options.ringBytes) {
    throw new RangeError(`wakeupBytes (${bytes}) must be smaller than ringBytes (${options.ringBytes}): the reader would never be woken before the ring is full`);
  }
  return bytes;
}

/** Loads, attaches and starts reading one probe; on any failure nothing stays attached. */
export function openProbe<Raw, Event>(spec: ProbeSpec<Raw, Event>, options: ProbeOptions = {}): ProbeStream<Raw, Event> {
  const open: OpenOptions = { ...spec.open, globals: { tcpscope_wakeup_bytes: wakeupBytesFor(options), ...spec.open?.globals } };
  const obj = BpfObject.open(builtObjectPath(spec.object), open);
  try {
    if (options.ringBytes !== undefined) obj.setMaxEntries(spec.ring, options.ringBytes);
    obj.load();
    const links = spec.attach(obj);
    const readerOptions: ReaderOptions & { lazy?: boolean } = { wakeupMs: options.latencyMs ?? 10 };
    if (options.signal) readerOptions.signal = options.signal;
    if (spec.lazy) readerOptions.lazy = true;
    const reader = obj.ringBuffer<Raw>(spec.ring, readerOptions);
    return new ProbeStream(obj, links, reader, spec.toEvent);
  } catch (e) {
    obj.close();
    throw e;
  }
}
