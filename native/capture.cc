// SPDX-License-Identifier: MIT
// Packet capture to pcapng straight from a packets ring (the ring reader's native consumer
// interface, ringbuf.h): ringConsumePcapng() encodes the enhanced packet blocks into a JS
// buffer on the JS thread, ringCapturePcapng() writes them to a file from a thread of its
// own, as tcpdump -w does, so that no JavaScript runs while packets arrive.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "common.h"
#include "pcapng.h"
#include "ringbuf.h"

namespace tcpscope {

namespace {

// A capture thread blocked on a full pipe looks at its abandon flag this often.
constexpr int kWritePollMs = 100;

// Closes an fd when it goes out of scope unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd = -1) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct Encoded {
  size_t consumed = 0;  // ring bytes encoded and released
  size_t out_end = 0;
  double packets = 0;
  bool out_full = false;  // stopped because the next block did not fit in out
};

// Encodes committed packet events as pcapng blocks into out[at..) and releases them, until
// the ring is caught up, a record is still being written, out is full, max_packets
// (decremented) are encoded or limit_bytes of the ring are consumed. Holds RingMutex.
Encoded EncodeFromRing(Ring& ring, uint8_t* out, size_t out_length, size_t at, PcapngParams& params, size_t limit_bytes) {
  Encoded e;
  e.out_end = at;
  for (;;) {
    RingSpan span = RingPending(ring);
    PcapngResult r = EncodePcapngBlocks(span.data, span.prod - span.cons, out, out_length, e.out_end, params);
    e.consumed += r.src_end;
    e.packets += r.packets;
    e.out_end = r.out_end;
    params.max_packets -= r.packets;
    unsigned long pos = span.cons + r.src_end;
    bool moved = RingRelease(ring, pos, span.prod);
    if (params.max_packets <= 0 || e.consumed >= limit_bytes) return e;
    if (pos == span.prod) {
      if (moved) continue;
      return e;
    }
    e.out_full = !RingRecordBusy(ring, pos);
    return e;
  }
}

// How the capture thread writes to its fd so that it can always give up when abandoned.
enum class OutKind {
  kBlocking,     // regular file, character device: write() returns
  kPipe,         // blocking pipe or FIFO: write() of more than the free space would block
  kSocket,       // send(MSG_DONTWAIT) never blocks
  kNonBlocking,  // O_NONBLOCK: EAGAIN, then poll
};

OutKind OutKindOf(int fd) {
  struct stat st = {};
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) return OutKind::kNonBlocking;
  if (fstat(fd, &st) != 0) return OutKind::kBlocking;
  if (S_ISFIFO(st.st_mode)) return OutKind::kPipe;
  if (S_ISSOCK(st.st_mode)) return OutKind::kSocket;
  return OutKind::kBlocking;
}

// Writes all of buf to fd; false with result.error set on failure or when abandoned while
// the reader of a pipe or socket is not reading.
bool WriteAll(int fd, OutKind kind, const uint8_t* buf, size_t length, double packets,
              const std::atomic<bool>& abandon, RingThreadResult& result) {
  size_t off = 0;
  while (off < length) {
    if (kind != OutKind::kBlocking) {
      if (abandon.load(std::memory_order_acquire)) {
        result.error = EPIPE;
        result.what = "write the capture file (closed while the reader of the pipe was not reading)";
        return false;
      }
    }
    size_t chunk = length - off;
    // A blocking pipe takes a write of PIPE_BUF bytes whole once poll() says it has room.
    if (kind == OutKind::kPipe) {
      struct pollfd writable = {fd, POLLOUT, 0};
      if (poll(&writable, 1, kWritePollMs) == 0) continue;
      if (chunk > PIPE_BUF) chunk = PIPE_BUF;
    }
    ssize_t n = kind == OutKind::kSocket ? send(fd, buf + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
                                         : write(fd, buf + off, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd writable = {fd, POLLOUT, 0};
      poll(&writable, 1, kWritePollMs);
      continue;
    }
    if (n < 0) {
      result.error = errno;
      char lost[96];
      snprintf(lost, sizeof lost, " (%.0f packets taken from the ring were not written)", packets);
      result.what = std::string("write the capture file") + lost;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// The capture thread's body: pcapng blocks from the ring to out_fd until stopped, abandoned,
// max_packets or a failure. Holds the ring's lock only while reading it, never in write().
RingThreadResult RunCapture(const std::shared_ptr<Ring>& ring, const RingThreadControl& control, int out_fd,
                            PcapngParams params, int latency_ms, size_t buffer_bytes, int wait_fd) {
  RingThreadResult result;
  const OutKind kind = OutKindOf(out_fd);
  // Written once now so that its pages are not faulted in one by one while packets arrive.
  std::vector<uint8_t> out(buffer_bytes, 0);
  size_t used = 0;
  double buffered_packets = 0;
  auto flush = [&]() -> bool {
    if (!WriteAll(out_fd, kind, out.data(), used, buffered_packets, control.abandon, result)) return false;
    result.bytes += static_cast<double>(used);
    result.records += buffered_packets;
    used = 0;
    buffered_packets = 0;
    return true;
  };
  // Everything committed (up to limit_bytes of the ring), writing out whenever it fills;
  // false when writing failed or the ring was closed.
  auto drain = [&](size_t limit_bytes) -> bool {
    for (;;) {
      Encoded r;
      {
        std::lock_guard<std::mutex> lock(RingMutex(*ring));
        if (RingPending(*ring).data == nullptr || control.abandon.load(std::memory_order_acquire)) return false;
        r = EncodeFromRing(*ring, out.data(), out.size(), used, params, limit_bytes);
      }
      used = r.out_end;
      buffered_packets += r.packets;
      limit_bytes = r.consumed >= limit_bytes ? 0 : limit_bytes - r.consumed;
      if (!r.out_full || used == 0 || limit_bytes == 0) return true;
      if (!flush()) return false;
    }
  };
  const size_t unlimited = ~size_t{0};
  const size_t ring_size = RingSize(*ring);
  while (params.max_packets > 0) {
    struct epoll_event events[2];
    int n = epoll_wait(wait_fd, events, 2, latency_ms);
    if (n < 0 && errno != EINTR) {
      result.error = errno;
      result.what = "wait for the ring buffer";
      break;
    }
    bool stop = control.stop.load(std::memory_order_acquire);
    if (control.abandon.load(std::memory_order_acquire)) break;
    if (!drain(stop ? ring_size : unlimited) || !flush()) break;
    if (stop) break;
  }
  if (result.error == 0 && !control.abandon.load(std::memory_order_acquire)) flush();
  return result;
}

// ringConsumePcapng(reader, out, outStart, maxPackets, layout, clockOffsetNs, ifindexes,
//                   snaplens, positions) -> packets: encodes packet events as pcapng blocks
// straight from the ring (no copy into a batch first) and releases what it encoded.
// positions receives [ring bytes consumed, outEnd].
Napi::Value RingConsumePcapng(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Ring> ring = RingForJsConsumer(env, info[0], "encode from the ring buffer");
  Bytes out = BytesArg(info[1], "out");
  size_t at = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  PcapngParams params = PcapngParamsArg(info, 3);
  if (info.Length() < 9 || !info[8].IsTypedArray()) throw Napi::TypeError::New(env, "ringConsumePcapng: expected positions");
  Napi::Float64Array positions = info[8].As<Napi::Float64Array>();
  if (positions.ElementLength() < 2 || at > out.length) throw Napi::RangeError::New(env, "ringConsumePcapng: bad positions");
  Encoded r;
  {
    std::lock_guard<std::mutex> lock(RingMutex(*ring));
    r = EncodeFromRing(*ring, out.data, out.length, at, params, ~size_t{0});
  }
  positions[0] = static_cast<double>(r.consumed);
  positions[1] = static_cast<double>(r.out_end);
  return Napi::Number::New(env, r.packets);
}

// ringCapturePcapng(reader, fd, maxPackets, layout, clockOffsetNs, ifindexes, snaplens,
//                   latencyMs, bufferBytes, onDone(error | null, packets, bytes))
// Writes packet events as pcapng blocks to a dup() of `fd` from a ring thread until the
// reader's stopThread() or close(), maxPackets or a write error. The thread sleeps in
// epoll_wait for the producer's wake-ups or latencyMs, like tcpdump's buffer timeout:
// JavaScript is not woken while packets arrive, which is most of a capture's CPU otherwise
// (bench/README.md, "bench/capture").
Napi::Value RingCapturePcapng(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RingForJsConsumer(env, info[0], "start a capture");
  if (info.Length() < 10 || !info[1].IsNumber() || !info[7].IsNumber() || !info[8].IsNumber() || !info[9].IsFunction())
    throw Napi::TypeError::New(env, "capturePcapng: expected (fd, maxPackets, layout, clockOffsetNs, ifindexes, snaplens, latencyMs, bufferBytes, onDone)");
  int out_fd = info[1].As<Napi::Number>().Int32Value();
  PcapngParams params = PcapngParamsArg(info, 2);
  auto ifindexes = std::make_shared<std::vector<uint32_t>>(params.ifindexes, params.ifindexes + params.interfaces);
  auto snaplens = std::make_shared<std::vector<uint32_t>>(params.snaplens, params.snaplens + params.interfaces);
  int latency_ms = info[7].As<Napi::Number>().Int32Value();
  size_t buffer_bytes = static_cast<size_t>(info[8].As<Napi::Number>().Int64Value());
  if (out_fd < 0 || latency_ms <= 0 || buffer_bytes < 64 * 1024 || buffer_bytes > (1u << 30))
    throw Napi::RangeError::New(env, "capturePcapng: needs an open fd, latencyMs > 0 and bufferBytes from 64 KiB to 1 GiB");
  // The thread writes through a dup of the fd (the writer may close its own), closed when
  // the body is destroyed: after the thread ends, or here if it never starts.
  auto own_fd = std::make_shared<FdGuard>(fcntl(out_fd, F_DUPFD_CLOEXEC, 3));
  if (own_fd->get() < 0) throw MakeBpfError(env, "start capture: duplicate the output fd", errno, "");
  StartRingThread(env, info[0], info[9].As<Napi::Function>(), "start capture thread",
                  [own_fd, params, ifindexes, snaplens, latency_ms, buffer_bytes](
                      const std::shared_ptr<Ring>& ring, const RingThreadControl& control, int wait_fd) mutable {
                    params.ifindexes = ifindexes->data();
                    params.snaplens = snaplens->data();
                    return RunCapture(ring, control, own_fd->get(), params, latency_ms, buffer_bytes, wait_fd);
                  });
  return env.Undefined();
}

}  // namespace

void InitCapture(Napi::Env env, Napi::Object exports) {
  exports.Set("ringConsumePcapng", Napi::Function::New(env, RingConsumePcapng, "ringConsumePcapng"));
  exports.Set("ringCapturePcapng", Napi::Function::New(env, RingCapturePcapng, "ringCapturePcapng"));
}

}  // namespace tcpscope
