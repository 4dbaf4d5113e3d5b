// SPDX-License-Identifier: MIT
// Packet events as pcapng enhanced packet blocks, from a copied batch or straight from a
// ring (RingReader::ConsumePcapng).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

namespace tcpscope {

// Offsets of the packet_event fields the encoder reads (from the object's BTF), and the
// timestamp unit.
enum PcapngLayout { kEventSize, kTsNs, kIfindex, kFrameLen, kCapKind, kCapLen, kMicroseconds, kPcapngLayoutFields };

struct PcapngParams {
  double max_packets = 0;
  uint32_t layout[kPcapngLayoutFields] = {};
  int64_t clock_offset_ns = 0;  // CLOCK_MONOTONIC -> wall clock
  const uint32_t* ifindexes = nullptr;  // file interface i is ifindexes[i]; unknown -> 0
  const uint32_t* snaplens = nullptr;   // per file interface, 0: no cut
  size_t interfaces = 0;
};

struct PcapngResult {
  size_t src_end;  // bytes of src consumed (whole records)
  size_t out_end;
  double packets;
};

// JS arguments (maxPackets, layout, clockOffsetNs, ifindexes, snaplens) from info[first].
PcapngParams PcapngParamsArg(const Napi::CallbackInfo& info, size_t first);

// Encodes records laid out as in a ring ([u32 len | busy | discard][u32 pgoff][event], 8-byte
// aligned) until src ends, a record is still busy, max_packets are written, or the next
// block does not fit in out[at..out_length).
PcapngResult EncodePcapngBlocks(const uint8_t* src, size_t src_length, uint8_t* out, size_t out_length,
                                size_t at, const PcapngParams& params);

}  // namespace tcpscope
