// SPDX-License-Identifier: MIT
// A BPF ring buffer consumer of our own: libbpf's ring_buffer__consume calls a C function
// per record and cannot stop before a record without consuming it. Here one call copies
// every committed record that fits, in kernel layout, into a JS-owned buffer with a single
// memcpy (the kernel maps the data area twice, so a wrapped run is contiguous), then
// releases them all with one store to the consumer position.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <bpf/bpf.h>

#include "common.h"
#include "pcapng.h"

namespace tcpscope {

namespace {

constexpr uint32_t kBusyBit = 1u << 31;
constexpr uint32_t kDiscardBit = 1u << 30;
constexpr uint32_t kHeaderSize = 8;

class RingReader : public Napi::ObjectWrap<RingReader> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeRingReader",
                                    {InstanceMethod("consume", &RingReader::Consume),
                                     InstanceMethod("consumePcapng", &RingReader::ConsumePcapng),
                                     InstanceMethod("capturePcapng", &RingReader::CapturePcapng),
                                     InstanceMethod("stopCapture", &RingReader::StopCapture),
                                     InstanceMethod("pending", &RingReader::Pending),
                                     InstanceMethod("close", &RingReader::CloseJs),
                                     InstanceAccessor("size", &RingReader::SizeJs, nullptr),
                                     InstanceAccessor("epollFd", &RingReader::EpollFdJs, nullptr)});
    exports.Set("NativeRingReader", fn);
  }

  // new NativeRingReader(mapFd)
  explicit RingReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingReader>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    struct bpf_map_info map_info = {};
    __u32 len = sizeof(map_info);
    if (bpf_obj_get_info_by_fd(fd, &map_info, &len) != 0) throw MakeBpfError(env, "ring buffer info", errno, "");
    if (map_info.type != BPF_MAP_TYPE_RINGBUF)
      throw Napi::TypeError::New(env, std::string("map '") + map_info.name + "' is not a BPF_MAP_TYPE_RINGBUF");
    page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = map_info.max_entries;
    mask_ = size_ - 1;
    void* consumer = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (consumer == MAP_FAILED) throw MakeBpfError(env, "mmap ring buffer consumer page", errno, "");
    // MAP_POPULATE: a reader first touching each page of the ring takes a page fault per
    // 4 KiB as data first arrives (a few microseconds each in a VM, ~10% of a capture's CPU);
    // populated here, at open, they are paid once, in bulk.
    void* producer = mmap(nullptr, page_size_ + 2 * size_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, page_size_);
    if (producer == MAP_FAILED) {
      int err = errno;
      munmap(consumer, page_size_);
      throw MakeBpfError(env, "mmap ring buffer data", err, "");
    }
    consumer_ = static_cast<uint8_t*>(consumer);
    producer_ = static_cast<uint8_t*>(producer);
    data_ = producer_ + page_size_;
    // The map fd polls readable whenever one record waits, so a level-triggered watcher
    // wakes the reader for every few records whatever the producer's wake-up policy. An
    // edge-triggered private epoll reports only the producer's wake-ups.
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {};
    event.events = EPOLLIN | EPOLLET;
    if (epoll_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      int err = errno;
      Unmap();
      throw MakeBpfError(env, "watch ring buffer", err, "");
    }
  }

  ~RingReader() override {
    JoinCapture(true);
    Unmap();
  }

 private:
  std::atomic<unsigned long>* ConsumerPos() { return reinterpret_cast<std::atomic<unsigned long>*>(consumer_); }
  std::atomic<unsigned long>* ProducerPos() { return reinterpret_cast<std::atomic<unsigned long>*>(producer_); }

  void Unmap() {
    if (epoll_fd_ >= 0) close(epoll_fd_);
    epoll_fd_ = -1;
    if (consumer_ != nullptr) munmap(consumer_, page_size_);
    if (producer_ != nullptr) munmap(producer_, page_size_ + 2 * size_);
    consumer_ = producer_ = data_ = nullptr;
  }

  // consume(target: Uint8Array) -> bytes written; records keep the kernel's 8-byte header
  // (length with busy/discard bits, page offset) and 8-byte alignment.
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (data_ == nullptr) throw Napi::Error::New(env, "ring buffer reader is closed");
    Bytes target = BytesArg(info[0], "target");
    size_t total = 0;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      unsigned long pos = cons;
      while (pos < prod) {
        auto* header = reinterpret_cast<std::atomic<uint32_t>*>(data_ + (pos & mask_));
        uint32_t len = header->load(std::memory_order_acquire);
        if (len & kBusyBit) break;
        uint32_t record = ((len & ~kDiscardBit) + kHeaderSize + 7) & ~7u;
        if (total + (pos - cons) + record > target.length) {
          if (total == 0 && pos == cons)
            throw Napi::RangeError::New(env, "a ring buffer record (" + std::to_string(record) +
                                                 " bytes) is larger than the batch buffer");
          break;
        }
        pos += record;
      }
      size_t bytes = pos - cons;
      if (bytes > 0) memcpy(target.data + total, data_ + (cons & mask_), bytes);
      total += bytes;
      if (!Release(pos, prod)) break;
    }
    return Napi::Number::New(env, static_cast<double>(total));
  }

  // Hands records up to `pos` back to the producer. When that caught up with `prod`, clears
  // the wake-ups already reported, so the next wait sleeps until a new one, and returns true
  // if the producer has moved on meanwhile: the wake-up for those records may be among the
  // cleared ones (the producer wakes once per consumer position), so the caller must read
  // them now rather than sleep.
  bool Release(unsigned long pos, unsigned long prod) {
    if (pos != ConsumerPos()->load(std::memory_order_relaxed)) ConsumerPos()->store(pos, std::memory_order_release);
    if (pos != prod) return false;
    struct epoll_event event;
    while (epoll_wait(epoll_fd_, &event, 1, 0) > 0) {
    }
    return ProducerPos()->load(std::memory_order_acquire) != pos;
  }

  // consumePcapng(out, outStart, maxPackets, layout, clockOffsetNs, ifindexes, snaplens,
  //               positions) -> packets: encodes packet events as pcapng blocks straight
  // from the ring (no copy into a batch first) and releases what it encoded.
  // positions receives [ring bytes consumed, outEnd].
  Napi::Value ConsumePcapng(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (data_ == nullptr) throw Napi::Error::New(env, "ring buffer reader is closed");
    Bytes out = BytesArg(info[0], "out");
    size_t at = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    PcapngParams params = PcapngParamsArg(info, 2);
    Napi::Float64Array positions = info[7].As<Napi::Float64Array>();
    if (positions.ElementLength() < 2 || at > out.length) throw Napi::RangeError::New(env, "consumePcapng: bad positions");
    RingEncoded r = EncodeFromRing(out.data, out.length, at, params, ~size_t{0});
    positions[0] = static_cast<double>(r.consumed);
    positions[1] = static_cast<double>(r.out_end);
    return Napi::Number::New(env, r.packets);
  }

  struct RingEncoded {
    size_t consumed = 0;  // ring bytes encoded and released
    size_t out_end = 0;
    double packets = 0;
    bool out_full = false;  // stopped because the next block did not fit in out
  };

  // Encodes committed packet events as pcapng blocks into out[at..) and releases them,
  // until the ring is caught up, a record is still being written, out is full, max_packets
  // (decremented) are encoded or limit_bytes of the ring are consumed.
  RingEncoded EncodeFromRing(uint8_t* out, size_t out_length, size_t at, PcapngParams& params, size_t limit_bytes) {
    RingEncoded e;
    e.out_end = at;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      PcapngResult r = EncodePcapngBlocks(data_ + (cons & mask_), prod - cons, out, out_length, e.out_end, params);
      e.consumed += r.src_end;
      e.packets += r.packets;
      e.out_end = r.out_end;
      params.max_packets -= r.packets;
      unsigned long pos = cons + r.src_end;
      bool moved = Release(pos, prod);
      if (params.max_packets <= 0 || e.consumed >= limit_bytes) return e;
      if (pos == prod) {
        if (moved) continue;
        return e;
      }
      uint32_t header = __atomic_load_n(reinterpret_cast<const uint32_t*>(data_ + (pos & mask_)), __ATOMIC_ACQUIRE);
      e.out_full = (header & kBusyBit) == 0;
      return e;
    }
  }

  // capturePcapng(fd, maxPackets, layout, clockOffsetNs, ifindexes, snaplens, latencyMs,
  //               bufferBytes, onDone(error | null, packets, bytes))
  // Writes packet events as pcapng blocks to `fd` from a thread of its own until
  // stopCapture(), close(), maxPackets or a write error; then onDone runs on the JS thread.
  // The thread sleeps in epoll_wait for the producer's wake-ups or latencyMs, like
  // tcpdump's buffer timeout: JavaScript is not woken while packets arrive, which halved
  // a capture's CPU against the JavaScript reader with the same wake-ups (bench/capture).
  Napi::Value CapturePcapng(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (data_ == nullptr) throw Napi::Error::New(env, "ring buffer reader is closed");
    if (capture_.joinable()) throw Napi::Error::New(env, "a capture is already running on this ring buffer");
    int out_fd = info[0].As<Napi::Number>().Int32Value();
    PcapngParams params = PcapngParamsArg(info, 1);
    capture_ifindexes_.assign(params.ifindexes, params.ifindexes + params.interfaces);
    capture_snaplens_.assign(params.snaplens, params.snaplens + params.interfaces);
    params.ifindexes = capture_ifindexes_.data();
    params.snaplens = capture_snaplens_.data();
    int latency_ms = info[6].As<Napi::Number>().Int32Value();
    size_t buffer_bytes = static_cast<size_t>(info[7].As<Napi::Number>().Int64Value());
    if (out_fd < 0 || latency_ms <= 0 || buffer_bytes < 64 * 1024)
      throw Napi::RangeError::New(env, "capturePcapng: needs an open fd, latencyMs > 0 and bufferBytes >= 64 KiB");
    Napi::Function on_done = info[8].As<Napi::Function>();
    int stop_fd = eventfd(0, EFD_CLOEXEC);
    int wait_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event readable = {};
    readable.events = EPOLLIN;
    if (stop_fd < 0 || wait_fd < 0 || epoll_ctl(wait_fd, EPOLL_CTL_ADD, epoll_fd_, &readable) != 0 ||
        epoll_ctl(wait_fd, EPOLL_CTL_ADD, stop_fd, &readable) != 0) {
      int err = errno;
      if (stop_fd >= 0) close(stop_fd);
      if (wait_fd >= 0) close(wait_fd);
      throw MakeBpfError(env, "start capture thread", err, "");
    }
    stop_fd_ = stop_fd;
    abandon_.store(false);
    auto done = Napi::ThreadSafeFunction::New(env, on_done, "tcpscope pcapng capture", 0, 1);
    // The JS object (and so this reader) stays alive until onDone has run.
    self_while_capturing_ = Napi::Persistent(info.This().As<Napi::Object>());
    capture_ = std::thread([this, out_fd, params, latency_ms, buffer_bytes, wait_fd, done]() mutable {
      CaptureResult result = RunCapture(out_fd, params, latency_ms, buffer_bytes, wait_fd);
      close(wait_fd);
      done.BlockingCall([this, result](Napi::Env env, Napi::Function callback) {
        JoinCapture(false);
        self_while_capturing_.Reset();
        Napi::Value error = result.error == 0 ? env.Null() : MakeBpfError(env, result.what, result.error, "").Value();
        callback.Call({error, Napi::Number::New(env, result.packets), Napi::Number::New(env, result.bytes)});
      });
      done.Release();
    });
    return env.Undefined();
  }

  // Ends a capture: the thread writes what already waits in the ring (at most one ring's
  // worth, the producer may go on), then reports.
  Napi::Value StopCapture(const Napi::CallbackInfo& info) {
    SignalStop();
    return info.Env().Undefined();
  }

  struct CaptureResult {
    int error = 0;
    std::string what;
    double packets = 0;  // written to the file
    double bytes = 0;
  };

  CaptureResult RunCapture(int out_fd, PcapngParams params, int latency_ms, size_t buffer_bytes, int wait_fd) {
    CaptureResult result;
    // Written once now so that its pages are not faulted in one by one while packets arrive.
    std::vector<uint8_t> out(buffer_bytes, 0);
    size_t used = 0;
    double buffered_packets = 0;
    auto flush = [&]() -> bool {
      size_t off = 0;
      while (off < used) {
        ssize_t n = write(out_fd, out.data() + off, used - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          // A non-blocking pipe (Node makes stdout one): wait until the reader takes more.
          struct pollfd writable = {out_fd, POLLOUT, 0};
          poll(&writable, 1, 100);
          if (abandon_.load(std::memory_order_acquire)) {
            result.error = EPIPE;
            result.what = "write the capture file (closed while the reader of the pipe was not reading)";
            return false;
          }
          continue;
        }
        if (n < 0) {
          result.error = errno;
          char lost[96];
          snprintf(lost, sizeof lost, " (%.0f packets taken from the ring were not written)", buffered_packets);
          result.what = std::string("write the capture file") + lost;
          return false;
        }
        off += static_cast<size_t>(n);
      }
      result.bytes += static_cast<double>(used);
      result.packets += buffered_packets;
      used = 0;
      buffered_packets = 0;
      return true;
    };
    // Everything committed (up to limit_bytes of the ring), writing out whenever it fills;
    // false when writing failed.
    auto drain = [&](size_t limit_bytes) -> bool {
      for (;;) {
        RingEncoded r = EncodeFromRing(out.data(), out.size(), used, params, limit_bytes);
        used = r.out_end;
        buffered_packets += r.packets;
        limit_bytes = r.consumed >= limit_bytes ? 0 : limit_bytes - r.consumed;
        if (!r.out_full || used == 0 || limit_bytes == 0) return true;
        if (!flush()) return false;
      }
    };
    const size_t unlimited = ~size_t{0};
    while (params.max_packets > 0) {
      struct epoll_event events[2];
      int n = epoll_wait(wait_fd, events, 2, latency_ms);
      if (n < 0 && errno != EINTR) {
        result.error = errno;
        result.what = "wait for the ring buffer";
        break;
      }
      bool stop = stop_requested_.load(std::memory_order_acquire);
      if (stop && abandon_.load(std::memory_order_acquire)) break;
      if (!drain(stop ? size_ : unlimited) || !flush()) break;
      if (stop) break;
    }
    if (result.error == 0) flush();
    return result;
  }

  void SignalStop() {
    if (stop_fd_ < 0) return;
    stop_requested_.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd_, &one, sizeof one);
    (void)ignored;
  }

  // Stops a running capture and waits for its thread; `abandon` skips the final drain (the
  // reader is closing: close() stops at once).
  void JoinCapture(bool abandon) {
    if (!capture_.joinable()) return;
    if (abandon) abandon_.store(true, std::memory_order_release);
    SignalStop();
    capture_.join();
    close(stop_fd_);
    stop_fd_ = -1;
    stop_requested_.store(false);
  }

  Napi::Value Pending(const Napi::CallbackInfo& info) {
    if (data_ == nullptr) return Napi::Number::New(info.Env(), 0);
    unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
    unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
    return Napi::Number::New(info.Env(), static_cast<double>(prod - cons));
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    JoinCapture(true);
    Unmap();
    return info.Env().Undefined();
  }

  Napi::Value SizeJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), size_); }
  Napi::Value EpollFdJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), epoll_fd_); }

  size_t page_size_ = 0;
  size_t size_ = 0;
  size_t mask_ = 0;
  uint8_t* consumer_ = nullptr;
  uint8_t* producer_ = nullptr;
  uint8_t* data_ = nullptr;
  int epoll_fd_ = -1;
  std::thread capture_;
  int stop_fd_ = -1;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> abandon_{false};
  std::vector<uint32_t> capture_ifindexes_;
  std::vector<uint32_t> capture_snaplens_;
  Napi::ObjectReference self_while_capturing_;
};

}  // namespace

void InitRingBuf(Napi::Env env, Napi::Object exports) {
  RingReader::Init(env, exports);
}

}  // namespace tcpscope
