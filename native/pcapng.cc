// SPDX-License-Identifier: MIT
// Packet events from a ring batch, written as pcapng enhanced packet blocks in one native
// call per batch. A capture writes up to a million packets a second; done per packet in
// JavaScript (field reads, a view per packet, a copy call) plus the JIT compiling that loop
// when traffic starts, it cost several times tcpdump's whole CPU (bench/capture).
#include <cstring>

#include "pcapng.h"

namespace tcpscope {

namespace {

constexpr uint32_t kBusyBit = 1u << 31;
constexpr uint32_t kDiscardBit = 1u << 30;
constexpr uint32_t kLengthMask = kDiscardBit - 1;
constexpr uint32_t kHeaderSize = 8;
constexpr uint32_t kEnhancedPacketBlock = 6;
constexpr uint32_t kCapturedBytes = 1;  // packet_event.cap_kind: the frame from its start

template <typename T>
T Load(const uint8_t* at) {
  T value;
  memcpy(&value, at, sizeof value);
  return value;
}

void Store32(uint8_t* at, uint32_t value) { memcpy(at, &value, sizeof value); }

}  // namespace

PcapngParams PcapngParamsArg(const Napi::CallbackInfo& info, size_t first) {
  Napi::Env env = info.Env();
  PcapngParams p;
  p.max_packets = info[first].As<Napi::Number>().DoubleValue();
  Napi::Uint32Array layout = info[first + 1].As<Napi::Uint32Array>();
  bool lossless = false;
  p.clock_offset_ns = info[first + 2].As<Napi::BigInt>().Int64Value(&lossless);
  Napi::Uint32Array ifindexes = info[first + 3].As<Napi::Uint32Array>();
  Napi::Uint32Array snaplens = info[first + 4].As<Napi::Uint32Array>();
  if (layout.ElementLength() < kPcapngLayoutFields || ifindexes.ElementLength() == 0 ||
      snaplens.ElementLength() < ifindexes.ElementLength())
    throw Napi::TypeError::New(env, "pcapng encoder: bad layout or interfaces");
  for (size_t i = 0; i < kPcapngLayoutFields; i++) p.layout[i] = layout[i];
  const uint32_t size = p.layout[kEventSize];
  if (p.layout[kTsNs] + 8 > size || p.layout[kIfindex] + 4 > size || p.layout[kFrameLen] + 4 > size ||
      p.layout[kCapKind] + 1 > size || p.layout[kCapLen] + 4 > size)
    throw Napi::RangeError::New(env, "pcapng encoder: a field lies outside the event");
  p.ifindexes = ifindexes.Data();
  p.snaplens = snaplens.Data();
  p.interfaces = ifindexes.ElementLength();
  return p;
}

PcapngResult EncodePcapngBlocks(const uint8_t* src, size_t src_length, uint8_t* out, size_t out_length,
                                size_t at, const PcapngParams& p) {
  const uint32_t* layout = p.layout;
  const uint32_t event_size = layout[kEventSize];
  const bool micro = layout[kMicroseconds] != 0;
  PcapngResult r{0, at, 0};
  size_t pos = 0;
  while (pos + kHeaderSize <= src_length && r.packets < p.max_packets) {
    // Acquire: the record's bytes are read after its header says it is committed (this
    // may run on a live ring).
    uint32_t header = __atomic_load_n(reinterpret_cast<const uint32_t*>(src + pos), __ATOMIC_ACQUIRE);
    if (header & kBusyBit) break;
    uint32_t length = header & kLengthMask;
    size_t next = pos + ((length + kHeaderSize + 7) & ~size_t{7});
    if (next > src_length) break;
    if ((header & kDiscardBit) != 0 || length < event_size) {
      pos = next;
      continue;
    }
    const uint8_t* event = src + pos + kHeaderSize;
    uint32_t ifindex = Load<uint32_t>(event + layout[kIfindex]);
    size_t id = 0;
    for (size_t i = 0; i < p.interfaces; i++) {
      if (p.ifindexes[i] == ifindex) {
        id = i;
        break;
      }
    }
    uint32_t captured = event[layout[kCapKind]] == kCapturedBytes ? Load<uint32_t>(event + layout[kCapLen]) : 0;
    if (captured > length - event_size) captured = length - event_size;
    if (p.snaplens[id] != 0 && captured > p.snaplens[id]) captured = p.snaplens[id];
    uint32_t padded = (captured + 3) & ~3u;
    uint32_t total = 32 + padded;
    if (r.out_end + total > out_length) break;

    uint64_t ts = Load<uint64_t>(event + layout[kTsNs]) + static_cast<uint64_t>(p.clock_offset_ns);
    if (micro) ts /= 1000;
    uint8_t* block = out + r.out_end;
    Store32(block, kEnhancedPacketBlock);
    Store32(block + 4, total);
    Store32(block + 8, static_cast<uint32_t>(id));
    Store32(block + 12, static_cast<uint32_t>(ts >> 32));
    Store32(block + 16, static_cast<uint32_t>(ts));
    Store32(block + 20, captured);
    Store32(block + 24, Load<uint32_t>(event + layout[kFrameLen]));
    memcpy(block + 28, event + event_size, captured);
    memset(block + 28 + captured, 0, padded - captured);
    Store32(block + 28 + padded, total);
    r.out_end += total;
    pos = next;
    r.packets++;
  }
  r.src_end = pos;
  return r;
}

namespace {

// encodePcapng(src, srcStart, out, outStart, maxPackets, layout: Uint32Array,
//              clockOffsetNs: bigint, ifindexes: Uint32Array, snaplens: Uint32Array,
//              positions: Float64Array) -> packets encoded
// Encodes the records of a batch copied by a reader (RecordReader.chunks()) from srcStart.
// positions receives [srcEnd, outEnd]. The ring reader's consumePcapng() does the same
// straight from the ring.
Napi::Value EncodePcapng(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes src = BytesArg(info[0], "src");
  size_t pos = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  Bytes out = BytesArg(info[2], "out");
  size_t at = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  PcapngParams params = PcapngParamsArg(info, 4);
  Napi::Float64Array positions = info[9].As<Napi::Float64Array>();
  if (positions.ElementLength() < 2 || pos > src.length || at > out.length)
    throw Napi::RangeError::New(env, "encodePcapng: bad positions");
  PcapngResult r = EncodePcapngBlocks(src.data + pos, src.length - pos, out.data, out.length, at, params);
  positions[0] = static_cast<double>(pos + r.src_end);
  positions[1] = static_cast<double>(r.out_end);
  return Napi::Number::New(env, r.packets);
}

}  // namespace

void InitPcapng(Napi::Env env, Napi::Object exports) {
  exports.Set("encodePcapng", Napi::Function::New(env, EncodePcapng, "encodePcapng"));
}

}  // namespace tcpscope
