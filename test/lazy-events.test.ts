// SPDX-License-Identifier: MIT
// Lazy views and lazy events decode exactly what the eager decoders do, only when read.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { inspect } from 'node:util';
import { Btf, decoderFor, viewDecoderFor } from '../lib/bpf/btf';
import { lazyEvents, plainEvent } from '../lib/probes/stream';
import { objectPath } from './helpers/bpf';

const objects = ['packets', 'conns', 'tcpevents'].filter((name) => fs.existsSync(objectPath(name)));

describe('viewDecoderFor', () => {
  it.each([['packets', 'packet_event'], ['conns', 'conn_event'], ['tcpevents', 'tcp_event']].filter(([o]) => objects.includes(o!)))('%s: %s views read what decoderFor decodes', (object, type) => {
    const btf = Btf.fromFile(objectPath(object!));
    const eager = decoderFor(btf, type!);
    const lazy = viewDecoderFor(btf, type!);
    expect(lazy.retainsView).toBe(true);
    expect(lazy.size).toBe(eager.size);
    const bytes = new Uint8Array(eager.size * 3 + 8);
    let x = 12345;
    for (let i = 0; i < bytes.length; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    const view = new DataView(bytes.buffer);
    for (const offset of [0, 8, eager.size + 8]) {
      const v = lazy.decode(view, offset);
      expect(v.toJSON()).toEqual(eager.decode(view, offset));
      // fields read through the getters, one by one
      for (const [k, want] of Object.entries(eager.decode(view, offset) as Record<string, unknown>)) expect((v as unknown as Record<string, unknown>)[k]).toEqual(want);
    }
    expect(() => lazy.decode(view, bytes.length - 4)).toThrow(RangeError);
    expect(inspect(lazy.decode(view, 0))).toContain(Object.keys(eager.decode(view, 0) as object)[0]);
  });
});

describe('lazyEvents', () => {
  it('computes a field when read, each time; toJSON, inspect and plainEvent see every field', () => {
    let reads = 0;
    const make = lazyEvents<{ a: number; b: Uint8Array }, { n: number; text: string }>('TestEvent', {
      n: (r) => r.a + 1,
      text: (r) => { reads++; return Array.from(r.b).join('.'); },
    });
    const e = make({ a: 1, b: Uint8Array.of(10, 0, 0, 1) });
    expect(reads).toBe(0);
    expect(e.n).toBe(2);
    expect(reads).toBe(0);
    expect(e.text).toBe('10.0.0.1');
    expect(reads).toBe(1);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ n: 2, text: '10.0.0.1' });
    expect(plainEvent(e)).toEqual({ n: 2, text: '10.0.0.1' });
    expect(inspect(e)).toBe("TestEvent { n: 2, text: '10.0.0.1' }");
    expect(e).toMatchObject({ n: 2, text: '10.0.0.1' });
  });
});
