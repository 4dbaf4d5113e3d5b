// SPDX-License-Identifier: MIT
// What the ring reader (ringbuf.cc) offers native consumers elsewhere in the addon, such as
// the pcapng capture (capture.cc): the committed bytes under the ring's lock and their
// release, and a thread of the consumer's own that holds the ring's lease (the reader's
// JavaScript consumers refuse meanwhile) until it returns or the reader closes.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace tcpscope {

struct Ring;

// Committed bytes from the consumer position: data[0, prod - cons), contiguous (the kernel
// maps the data area twice). data is nullptr once the reader is closed.
struct RingSpan {
  const uint8_t* data = nullptr;
  unsigned long cons = 0;
  unsigned long prod = 0;
};

// Held by whoever reads the mapping; closing the reader takes it before unmapping.
std::mutex& RingMutex(Ring& ring);
// The following need RingMutex held.
RingSpan RingPending(Ring& ring);
// Hands the records before `pos` back to the producer; `prod` is the span's. True when the
// producer moved on meanwhile and its wake-up may be lost: read again before sleeping.
bool RingRelease(Ring& ring, unsigned long pos, unsigned long prod);
// True when the record at `pos` is still being written (reserved, not committed).
bool RingRecordBusy(Ring& ring, unsigned long pos);
size_t RingSize(Ring& ring);

// What a ring thread reads of its reader: `stop` asks it to consume what waits and return
// (stopThread(), an abort), `abandon` to return now (close()).
struct RingThreadControl {
  std::atomic<bool> stop{false};
  std::atomic<bool> abandon{false};
};

struct RingThreadResult {
  int error = 0;       // errno of a failure, with `what` failed
  std::string what;
  double records = 0;  // records the thread consumed and delivered
  double bytes = 0;    // bytes it wrote, where it writes
};

// A ring thread's work: `wait_fd` is an epoll set readable on the producer's wake-ups and
// when control.stop is set.
using RingThreadBody = std::function<RingThreadResult(const std::shared_ptr<Ring>& ring,
                                                      const RingThreadControl& control, int wait_fd)>;

// The ring of `reader` (a NativeRingReader) for a consumer running on the JS thread now;
// throws a JS error naming `what` when it is not one, is closed, or a thread holds it.
std::shared_ptr<Ring> RingForJsConsumer(Napi::Env env, Napi::Value reader, const char* what);

// Runs `body` on a thread of its own holding the ring of `reader`; when it returns,
// on_done(error | null, records, bytes) runs on the JS thread (`what` names the thread in
// errors). Throws, starting nothing, as RingForJsConsumer does or when no thread starts.
void StartRingThread(Napi::Env env, Napi::Value reader, Napi::Function on_done, const char* what, RingThreadBody body);

}  // namespace tcpscope
