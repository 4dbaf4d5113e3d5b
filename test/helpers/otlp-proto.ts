// SPDX-License-Identifier: MIT
// Decodes OTLP protobuf requests (ExportMetricsServiceRequest, ExportLogsServiceRequest) into
// the OTLP JSON shape, so that one receiver checks both wire formats with the same assertions.
// Field numbers are those of opentelemetry-proto (metrics/v1, logs/v1, common/v1).

type Field = { no: number; wire: number; value: bigint | Uint8Array };

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[i++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) { out.push({ no, wire, value: view.getBigUint64(i, true) }); i += 8; }
    else if (wire === 5) { out.push({ no, wire, value: BigInt(view.getUint32(i, true)) }); i += 4; }
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(i, i + len) });
      i += len;
    } else throw new Error(`protobuf: wire type ${wire} not expected in OTLP`);
  }
  return out;
}

const bytes = (f: Field): Uint8Array => f.value as Uint8Array;
const text = (f: Field): string => Buffer.from(bytes(f)).toString('utf8');
const double = (f: Field): number => { const b = new DataView(new ArrayBuffer(8)); b.setBigUint64(0, f.value as bigint, true); return b.getFloat64(0, true); };
const all = (fs: Field[], no: number): Field[] => fs.filter((f) => f.no === no);
const one = (fs: Field[], no: number): Field | undefined => fs.find((f) => f.no === no);

function packedFixed64(f: Field[], no: number): bigint[] {
  return all(f, no).flatMap((x) => {
    if (x.wire === 1) return [x.value as bigint];
    const b = bytes(x);
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Array.from({ length: b.length / 8 }, (_, k) => view.getBigUint64(k * 8, true));
  });
}

function anyValue(buf: Uint8Array): Record<string, unknown> {
  const f = fields(buf);
  const [first] = f;
  if (!first) return {};
  switch (first.no) {
    case 1: return { stringValue: text(first) };
    case 2: return { boolValue: first.value !== 0n };
    case 3: return { intValue: String(BigInt.asIntN(64, first.value as bigint)) };
    case 4: return { doubleValue: double(first) };
    case 5: return { arrayValue: { values: all(fields(bytes(first)), 1).map((v) => anyValue(bytes(v))) } };
    default: return {};
  }
}

function keyValues(fs: Field[], no: number): Array<{ key: string; value: Record<string, unknown> }> {
  return all(fs, no).map((kv) => {
    const f = fields(bytes(kv));
    const v = one(f, 2);
    return { key: text(one(f, 1)!), value: v ? anyValue(bytes(v)) : {} };
  });
}

function resource(f: Field | undefined): { attributes: ReturnType<typeof keyValues> } {
  return { attributes: f ? keyValues(fields(bytes(f)), 1) : [] };
}

function scope(f: Field | undefined): { name: string } {
  const s = f ? fields(bytes(f)) : [];
  const name = one(s, 1);
  return { name: name ? text(name) : '' };
}

function numberPoint(buf: Uint8Array): Record<string, unknown> {
  const f = fields(buf);
  const p: Record<string, unknown> = {
    attributes: keyValues(f, 7),
    startTimeUnixNano: String(one(f, 2)?.value ?? 0n),
    timeUnixNano: String(one(f, 3)?.value ?? 0n),
  };
  const d = one(f, 4);
  const n = one(f, 6);
  if (d) p['asDouble'] = double(d);
  if (n) p['asInt'] = String(BigInt.asIntN(64, n.value as bigint));
  return p;
}

function histogramPoint(buf: Uint8Array): Record<string, unknown> {
  const f = fields(buf);
  const sum = one(f, 5);
  const bounds = all(f, 7).flatMap((x) => {
    if (x.wire === 1) return [double(x)];
    const b = bytes(x);
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Array.from({ length: b.length / 8 }, (_, k) => view.getFloat64(k * 8, true));
  });
  return {
    attributes: keyValues(f, 9),
    count: String(one(f, 4)?.value ?? 0n),
    ...(sum ? { sum: double(sum) } : {}),
    bucketCounts: packedFixed64(f, 6).map(String),
    explicitBounds: bounds,
  };
}

function metric(buf: Uint8Array): Record<string, unknown> {
  const f = fields(buf);
  const m: Record<string, unknown> = { name: text(one(f, 1)!) };
  const desc = one(f, 2);
  const unit = one(f, 3);
  if (desc) m['description'] = text(desc);
  if (unit) m['unit'] = text(unit);
  const gauge = one(f, 5);
  const sum = one(f, 7);
  const hist = one(f, 9);
  if (gauge) m['gauge'] = { dataPoints: all(fields(bytes(gauge)), 1).map((p) => numberPoint(bytes(p))) };
  if (sum) {
    const s = fields(bytes(sum));
    m['sum'] = { dataPoints: all(s, 1).map((p) => numberPoint(bytes(p))), aggregationTemporality: Number(one(s, 2)?.value ?? 0n), isMonotonic: one(s, 3)?.value === 1n };
  }
  if (hist) {
    const h = fields(bytes(hist));
    m['histogram'] = { dataPoints: all(h, 1).map((p) => histogramPoint(bytes(p))), aggregationTemporality: Number(one(h, 2)?.value ?? 0n) };
  }
  return m;
}

/** ExportMetricsServiceRequest → its OTLP JSON shape. */
export function decodeMetricsRequest(buf: Uint8Array): unknown {
  return {
    resourceMetrics: all(fields(buf), 1).map((rm) => {
      const f = fields(bytes(rm));
      return {
        resource: resource(one(f, 1)),
        scopeMetrics: all(f, 2).map((sm) => {
          const s = fields(bytes(sm));
          return { scope: scope(one(s, 1)), metrics: all(s, 2).map((m) => metric(bytes(m))) };
        }),
      };
    }),
  };
}

/** ExportLogsServiceRequest → its OTLP JSON shape. */
export function decodeLogsRequest(buf: Uint8Array): unknown {
  return {
    resourceLogs: all(fields(buf), 1).map((rl) => {
      const f = fields(bytes(rl));
      return {
        resource: resource(one(f, 1)),
        scopeLogs: all(f, 2).map((sl) => {
          const s = fields(bytes(sl));
          return {
            scope: scope(one(s, 1)),
            logRecords: all(s, 2).map((lr) => {
              const r = fields(bytes(lr));
              const body = one(r, 5);
              const event = one(r, 12);
              const severityText = one(r, 3);
              return {
                timeUnixNano: String(one(r, 1)?.value ?? 0n),
                severityNumber: Number(one(r, 2)?.value ?? 0n),
                severityText: severityText ? text(severityText) : '',
                body: body ? anyValue(bytes(body)) : {},
                attributes: keyValues(r, 6),
                ...(event ? { eventName: text(event) } : {}),
              };
            }),
          };
        }),
      };
    }),
  };
}
