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

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <unordered_set>
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
// close() waits this long for a capture thread to see it was abandoned; a thread that has
// not ended by then (a write() into a file system that does not return) is left to end on
// its own: it owns everything it still touches.
constexpr auto kCloseWait = std::chrono::seconds(1);
// A capture thread blocked on a full pipe looks at its abandon flag this often.
constexpr int kWritePollMs = 100;

// One consumer per ring in this process: two would both advance consumer_pos and hand
// the same records out twice or skip some. Keyed by map id, which the kernel does not
// reuse while the reader's mappings keep the map alive.
std::mutex g_lease_mu;
std::unordered_set<uint32_t> g_leased;

// The mapped ring, shared by its reader and the reader's capture thread. `mu` is held by
// whoever reads the mapping; Unmap() takes it, so a thread never reads unmapped memory.
struct Ring {
  std::mutex mu;
  size_t page_size = 0;
  size_t size = 0;
  size_t mask = 0;
  uint8_t* consumer = nullptr;
  uint8_t* producer = nullptr;
  uint8_t* data = nullptr;
  int epoll_fd = -1;
  uint32_t map_id = 0;
  bool leased = false;

  ~Ring() { Unmap(); }

  std::atomic<unsigned long>* ConsumerPos() { return reinterpret_cast<std::atomic<unsigned long>*>(consumer); }
  std::atomic<unsigned long>* ProducerPos() { return reinterpret_cast<std::atomic<unsigned long>*>(producer); }

  // Callers hold mu (or own the ring alone).
  void Unmap() {
    if (data != nullptr) Commit();
    if (epoll_fd >= 0) close(epoll_fd);
    epoll_fd = -1;
    if (consumer != nullptr) munmap(consumer, page_size);
    if (producer != nullptr) munmap(producer, page_size + 2 * size);
    consumer = producer = data = nullptr;
    if (leased) {
      std::lock_guard<std::mutex> lock(g_lease_mu);
      g_leased.erase(map_id);
      leased = false;
    }
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
    while (epoll_wait(epoll_fd, &event, 1, 0) > 0) {
    }
    return ProducerPos()->load(std::memory_order_acquire) != pos;
  }

  // Where LendInto indexes the records it lends: payload offset and length of each record
  // not discarded, up to `capacity` of them.
  struct Index {
    uint32_t* offsets = nullptr;
    uint32_t* lengths = nullptr;
    size_t capacity = 0;
    size_t count = 0;
  };

  // Copies every committed record that fits into target, releases them; bytes written, or
  // -1 when the first record alone does not fit (its size in *too_big).
  long ReadInto(uint8_t* target, size_t length, uint32_t* too_big) {
    Commit();
    size_t total = 0;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      unsigned long pos = cons;
      while (pos < prod) {
        auto* header = reinterpret_cast<std::atomic<uint32_t>*>(data + (pos & mask));
        uint32_t len = header->load(std::memory_order_acquire);
        if (len & kBusyBit) break;
        uint32_t record = ((len & ~kDiscardBit) + kHeaderSize + 7) & ~7u;
        size_t at = total + (pos - cons);
        if (at + record > length) {
          if (total == 0 && pos == cons) {
            *too_big = record;
            return -1;
          }
          break;
        }
        pos += record;
      }
      size_t bytes = pos - cons;
      if (bytes > 0) memcpy(target + total, data + (cons & mask), bytes);
      total += bytes;
      if (!Release(pos, prod)) break;
    }
    return static_cast<long>(total);
  }

  // Where the zero-copy reader's batch ends: records from the consumer position up to here
  // are lent to JavaScript and released (the consumer position moved here) by the reader's
  // next read, Commit() or Unmap(), never while JavaScript may still read them.
  unsigned long lent_end = 0;
  bool lent = false;

  // Gives the lent records back to the producer. Callers hold mu.
  void Commit() {
    if (!lent) return;
    lent = false;
    if (lent_end != ConsumerPos()->load(std::memory_order_relaxed)) ConsumerPos()->store(lent_end, std::memory_order_release);
  }

  struct Lent {
    size_t start = 0;  // offset of the batch in the data area (mapped twice: never wraps)
    size_t bytes = 0;
  };

  // Commits the previous loan, then indexes the committed records that follow (at most
  // max_bytes and index->capacity of them) without copying or releasing them: they stay
  // in the ring, lent to the caller until the next Commit().
  Lent LendInto(size_t max_bytes, Index* index) {
    Commit();
    // Locals, not the ring's and index's fields: the acquire loads below are compiler
    // barriers that would reload every field on each record otherwise.
    const uint8_t* const base = data;
    const size_t wrap = mask;
    uint32_t* const offsets = index->offsets;
    uint32_t* const lengths = index->lengths;
    const size_t capacity = index->capacity;
    auto header_at = [base, wrap](unsigned long pos) {
      return __atomic_load_n(reinterpret_cast<const uint32_t*>(base + (pos & wrap)), __ATOMIC_ACQUIRE);
    };
    size_t count = 0;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      unsigned long end = std::min<unsigned long>(prod, cons + max_bytes);
      unsigned long pos = cons;
      // Each header says where the next one is, so a plain walk waits for every load in
      // turn (a cache miss per record, as long as libbpf's whole consumer per record).
      // Records are usually all one size: load the next kAhead headers at the places the
      // last record's size predicts, all at once, and use each while the prediction holds.
      // Reading a wrong place is harmless (it is in the mapping, the value is not used).
      constexpr int kAhead = 16;
      uint32_t step = 0;
      bool stop = false;
      while (!stop && pos < end && count < capacity) {
        uint32_t headers[kAhead];
        int loaded = 1;
        headers[0] = header_at(pos);
        if (step != 0) {
          for (int k = 1; k < kAhead; k++) headers[k] = header_at(pos + static_cast<unsigned long>(k) * step);
          loaded = kAhead;
        }
        for (int k = 0; k < loaded; k++) {
          uint32_t len = headers[k];
          uint32_t record = ((len & ~kDiscardBit) + kHeaderSize + 7) & ~7u;
          if ((len & kBusyBit) != 0 || pos + record > end || count == capacity) {
            stop = true;
            break;
          }
          if ((len & kDiscardBit) == 0) {
            offsets[count] = static_cast<uint32_t>(pos - cons + kHeaderSize);
            lengths[count] = len;
            count++;
          }
          pos += record;
          bool predicted = record == step;
          step = record;
          if (!predicted || pos >= end) break;
        }
      }
      Lent l;
      l.start = cons & mask;
      l.bytes = pos - cons;
      if (l.bytes > 0) {
        index->count = count;
        lent = true;
        lent_end = pos;
        return l;
      }
      // Nothing lent: as Release() when caught up, clear the wake-ups already reported and
      // look again if the producer moved meanwhile.
      if (!Release(cons, prod)) return l;
    }
  }

  struct Encoded {
    size_t consumed = 0;  // ring bytes encoded and released
    size_t out_end = 0;
    double packets = 0;
    bool out_full = false;  // stopped because the next block did not fit in out
  };

  // Encodes committed packet events as pcapng blocks into out[at..) and releases them,
  // until the ring is caught up, a record is still being written, out is full, max_packets
  // (decremented) are encoded or limit_bytes of the ring are consumed.
  Encoded EncodeInto(uint8_t* out, size_t out_length, size_t at, PcapngParams& params, size_t limit_bytes) {
    Commit();
    Encoded e;
    e.out_end = at;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      PcapngResult r = EncodePcapngBlocks(data + (cons & mask), prod - cons, out, out_length, e.out_end, params);
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
      uint32_t header = __atomic_load_n(reinterpret_cast<const uint32_t*>(data + (pos & mask)), __ATOMIC_ACQUIRE);
      e.out_full = (header & kBusyBit) == 0;
      return e;
    }
  }
};

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
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// What a capture thread and the reader that started it share.
struct CaptureState {
  std::atomic<bool> stop{false};
  std::atomic<bool> abandon{false};  // close(): end now, without the final drain
  int stop_fd = -1;                   // eventfd waking the thread; closed with the state
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread thread;

  ~CaptureState() {
    if (stop_fd >= 0) close(stop_fd);
  }

  void Signal() {
    stop.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd, &one, sizeof one);
    (void)ignored;
  }
};

struct CaptureResult {
  int error = 0;
  std::string what;
  double packets = 0;  // written to the file
  double bytes = 0;
};

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
              const std::atomic<bool>& abandon, CaptureResult& result) {
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
// max_packets or a failure. Holds ring->mu only while reading the ring, never in write().
CaptureResult RunCapture(const std::shared_ptr<Ring>& ring, CaptureState& state, int out_fd, PcapngParams params,
                         int latency_ms, size_t buffer_bytes, int wait_fd) {
  CaptureResult result;
  const OutKind kind = OutKindOf(out_fd);
  // Written once now so that its pages are not faulted in one by one while packets arrive.
  std::vector<uint8_t> out(buffer_bytes, 0);
  size_t used = 0;
  double buffered_packets = 0;
  auto flush = [&]() -> bool {
    if (!WriteAll(out_fd, kind, out.data(), used, buffered_packets, state.abandon, result)) return false;
    result.bytes += static_cast<double>(used);
    result.packets += buffered_packets;
    used = 0;
    buffered_packets = 0;
    return true;
  };
  // Everything committed (up to limit_bytes of the ring), writing out whenever it fills;
  // false when writing failed or the ring was closed.
  auto drain = [&](size_t limit_bytes) -> bool {
    for (;;) {
      Ring::Encoded r;
      {
        std::lock_guard<std::mutex> lock(ring->mu);
        if (ring->data == nullptr || state.abandon.load(std::memory_order_acquire)) return false;
        r = ring->EncodeInto(out.data(), out.size(), used, params, limit_bytes);
      }
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
    bool stop = state.stop.load(std::memory_order_acquire);
    if (state.abandon.load(std::memory_order_acquire)) break;
    if (!drain(stop ? ring->size : unlimited) || !flush()) break;
    if (stop) break;
  }
  if (result.error == 0 && !state.abandon.load(std::memory_order_acquire)) flush();
  return result;
}

class RingReader : public Napi::ObjectWrap<RingReader> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeRingReader",
                                    {InstanceMethod("consume", &RingReader::Consume),
                                     InstanceMethod("consumePcapng", &RingReader::ConsumePcapng),
                                     InstanceMethod("dataArea", &RingReader::DataArea),
                                     InstanceMethod("lend", &RingReader::Lend),
                                     InstanceMethod("capturePcapng", &RingReader::CapturePcapng),
                                     InstanceMethod("stopCapture", &RingReader::StopCapture),
                                     InstanceMethod("close", &RingReader::CloseJs),
                                     InstanceAccessor("capturing", &RingReader::CapturingJs, nullptr),
                                     InstanceAccessor("epollFd", &RingReader::EpollFdJs, nullptr)});
    exports.Set("NativeRingReader", fn);
  }

  // new NativeRingReader(mapFd): takes the ring's lease for this process.
  explicit RingReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingReader>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "NativeRingReader: expected a map fd");
    int fd = info[0].As<Napi::Number>().Int32Value();
    struct bpf_map_info map_info = {};
    __u32 len = sizeof(map_info);
    if (bpf_obj_get_info_by_fd(fd, &map_info, &len) != 0) throw MakeBpfError(env, "ring buffer info", errno, "");
    if (map_info.type != BPF_MAP_TYPE_RINGBUF)
      throw Napi::TypeError::New(env, std::string("map '") + map_info.name + "' is not a BPF_MAP_TYPE_RINGBUF");
    auto ring = std::make_shared<Ring>();
    {
      std::lock_guard<std::mutex> lock(g_lease_mu);
      if (!g_leased.insert(map_info.id).second)
        throw Napi::Error::New(env, std::string("ring buffer '") + map_info.name +
                                        "' already has a reader in this process: one consumer per ring; close the "
                                        "other reader (or stop its capture) first");
    }
    ring->map_id = map_info.id;
    ring->leased = true;
    ring->page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    ring->size = map_info.max_entries;
    ring->mask = ring->size - 1;
    void* consumer = mmap(nullptr, ring->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (consumer == MAP_FAILED) throw MakeBpfError(env, "mmap ring buffer consumer page", errno, "");
    ring->consumer = static_cast<uint8_t*>(consumer);
    // MAP_POPULATE: a reader first touching each page of the ring takes a page fault per
    // 4 KiB as data first arrives (a few microseconds each in a VM, ~10% of a capture's CPU);
    // populated here, at open, they are paid once, in bulk.
    void* producer = mmap(nullptr, ring->page_size + 2 * ring->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, ring->page_size);
    if (producer == MAP_FAILED) throw MakeBpfError(env, "mmap ring buffer data", errno, "");
    ring->producer = static_cast<uint8_t*>(producer);
    ring->data = ring->producer + ring->page_size;
    // The map fd polls readable whenever one record waits, so a level-triggered watcher
    // wakes the reader for every few records whatever the producer's wake-up policy. An
    // edge-triggered private epoll reports only the producer's wake-ups.
    ring->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {};
    event.events = EPOLLIN | EPOLLET;
    if (ring->epoll_fd < 0 || epoll_ctl(ring->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
      throw MakeBpfError(env, "watch ring buffer", errno, "");
    ring_ = std::move(ring);  // on a throw above, ~Ring unmaps and gives the lease back
  }

  ~RingReader() override { Close(); }

 private:
  // The JS-thread consumers refuse while a capture thread holds the ring.
  void RequireJsConsumer(Napi::Env env, const char* what) {
    if (ring_ == nullptr || ring_->data == nullptr) throw Napi::Error::New(env, "ring buffer reader is closed");
    if (capture_ != nullptr)
      throw Napi::Error::New(env, std::string(what) +
                                      ": a capture thread is consuming this ring buffer (one consumer per ring); "
                                      "stop the capture first");
  }

  // consume(target: Uint8Array) -> bytes written; records keep the kernel's 8-byte header
  // (length with busy/discard bits, page offset) and 8-byte alignment.
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "read the ring buffer");
    Bytes target = BytesArg(info[0], "target");
    uint32_t too_big = 0;
    long total;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      total = ring_->ReadInto(target.data, target.length, &too_big);
    }
    if (total < 0)
      throw Napi::RangeError::New(env, "a ring buffer record (" + std::to_string(too_big) +
                                           " bytes) is larger than the batch buffer");
    return Napi::Number::New(env, static_cast<double>(total));
  }

  // dataArea() -> ArrayBuffer over the ring's data pages, mapped twice back to back (so a
  // record that wraps is contiguous), created once per reader. The pages are mapped
  // read-only (the kernel refuses a writable mapping): a write through any view of this
  // buffer kills the process, so lib/bpf/batch.ts keeps it private and hands users
  // read-only accessors (RecordView) or copies. close() detaches it before unmapping, so a
  // view that outlived the reader throws instead of reading unmapped memory.
  Napi::Value DataArea(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "map the ring buffer");
    if (area_.IsEmpty()) {
      Napi::ArrayBuffer area = Napi::ArrayBuffer::New(env, ring_->data, 2 * ring_->size);
      area_ = Napi::Persistent(area);
    }
    return area_.Value();
  }

  // lend(offsets: Uint32Array, lengths: Uint32Array, out: Uint32Array, maxBytes) -> bytes:
  // commits the previous loan, then lends the committed records that follow without
  // copying them: out = [start in dataArea(), bytes, records]; offsets are relative to
  // start. They stay in the ring until the next lend(), another consume or close().
  Napi::Value Lend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "read the ring buffer");
    if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsTypedArray() || !info[3].IsNumber())
      throw Napi::TypeError::New(env, "lend: expected (offsets, lengths, out, maxBytes)");
    Napi::Uint32Array offsets = info[0].As<Napi::Uint32Array>();
    Napi::Uint32Array lengths = info[1].As<Napi::Uint32Array>();
    Napi::Uint32Array out = info[2].As<Napi::Uint32Array>();
    if (offsets.TypedArrayType() != napi_uint32_array || lengths.TypedArrayType() != napi_uint32_array ||
        out.TypedArrayType() != napi_uint32_array || out.ElementLength() < 3)
      throw Napi::TypeError::New(env, "lend: offsets, lengths and out must be Uint32Arrays");
    double max_bytes = info[3].As<Napi::Number>().DoubleValue();
    if (!(max_bytes >= 16)) throw Napi::RangeError::New(env, "lend: maxBytes must be at least 16");
    Ring::Index index;
    index.offsets = offsets.Data();
    index.lengths = lengths.Data();
    index.capacity = std::min(offsets.ElementLength(), lengths.ElementLength());
    Ring::Lent lent;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      lent = ring_->LendInto(std::min(static_cast<size_t>(max_bytes), ring_->size), &index);
    }
    out[0] = static_cast<uint32_t>(lent.start);
    out[1] = static_cast<uint32_t>(lent.bytes);
    out[2] = static_cast<uint32_t>(index.count);
    return Napi::Number::New(env, static_cast<double>(lent.bytes));
  }

  // consumePcapng(out, outStart, maxPackets, layout, clockOffsetNs, ifindexes, snaplens,
  //               positions) -> packets: encodes packet events as pcapng blocks straight
  // from the ring (no copy into a batch first) and releases what it encoded.
  // positions receives [ring bytes consumed, outEnd].
  Napi::Value ConsumePcapng(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "encode from the ring buffer");
    Bytes out = BytesArg(info[0], "out");
    size_t at = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    PcapngParams params = PcapngParamsArg(info, 2);
    Napi::Float64Array positions = info[7].As<Napi::Float64Array>();
    if (positions.ElementLength() < 2 || at > out.length) throw Napi::RangeError::New(env, "consumePcapng: bad positions");
    Ring::Encoded r;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      r = ring_->EncodeInto(out.data, out.length, at, params, ~size_t{0});
    }
    positions[0] = static_cast<double>(r.consumed);
    positions[1] = static_cast<double>(r.out_end);
    return Napi::Number::New(env, r.packets);
  }

  // capturePcapng(fd, maxPackets, layout, clockOffsetNs, ifindexes, snaplens, latencyMs,
  //               bufferBytes, onDone(error | null, packets, bytes))
  // Writes packet events as pcapng blocks to a dup() of `fd` from a thread of its own until
  // stopCapture(), close(), maxPackets or a write error; then onDone runs on the JS thread.
  // The thread holds the ring's lease meanwhile: consume() refuses. It sleeps in epoll_wait
  // for the producer's wake-ups or latencyMs, like tcpdump's buffer timeout: JavaScript is
  // not woken while packets arrive, which is most of a capture's CPU otherwise (figures in
  // bench/README.md, "bench/capture").
  Napi::Value CapturePcapng(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "start a capture");
    if (info.Length() < 9 || !info[0].IsNumber() || !info[6].IsNumber() || !info[7].IsNumber() || !info[8].IsFunction())
      throw Napi::TypeError::New(env, "capturePcapng: expected (fd, maxPackets, layout, clockOffsetNs, ifindexes, snaplens, latencyMs, bufferBytes, onDone)");
    int out_fd = info[0].As<Napi::Number>().Int32Value();
    PcapngParams params = PcapngParamsArg(info, 1);
    std::vector<uint32_t> ifindexes(params.ifindexes, params.ifindexes + params.interfaces);
    std::vector<uint32_t> snaplens(params.snaplens, params.snaplens + params.interfaces);
    int latency_ms = info[6].As<Napi::Number>().Int32Value();
    size_t buffer_bytes = static_cast<size_t>(info[7].As<Napi::Number>().Int64Value());
    if (out_fd < 0 || latency_ms <= 0 || buffer_bytes < 64 * 1024 || buffer_bytes > (1u << 30))
      throw Napi::RangeError::New(env, "capturePcapng: needs an open fd, latencyMs > 0 and bufferBytes from 64 KiB to 1 GiB");
    Napi::Function on_done = info[8].As<Napi::Function>();
    // Everything the thread uses it owns: a dup of the fd (the writer may close its own),
    // its wait set and the shared ring and state. Each is closed here if starting fails.
    FdGuard own_fd(fcntl(out_fd, F_DUPFD_CLOEXEC, 3));
    if (own_fd.get() < 0) throw MakeBpfError(env, "start capture: duplicate the output fd", errno, "");
    auto state = std::make_shared<CaptureState>();
    state->stop_fd = eventfd(0, EFD_CLOEXEC);
    FdGuard wait_fd(epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event readable = {};
    readable.events = EPOLLIN;
    if (state->stop_fd < 0 || wait_fd.get() < 0 || epoll_ctl(wait_fd.get(), EPOLL_CTL_ADD, ring_->epoll_fd, &readable) != 0 ||
        epoll_ctl(wait_fd.get(), EPOLL_CTL_ADD, state->stop_fd, &readable) != 0)
      throw MakeBpfError(env, "start capture thread", errno, "");
    auto done = Napi::ThreadSafeFunction::New(env, on_done, "tcpscope pcapng capture", 0, 1);
    std::shared_ptr<Ring> ring = ring_;
    RingReader* self = this;
    int thread_out = own_fd.get();
    int thread_wait = wait_fd.get();
    try {
      state->thread = std::thread([self, ring, state, thread_out, thread_wait, params, ifindexes = std::move(ifindexes),
                                   snaplens = std::move(snaplens), latency_ms, buffer_bytes, done]() mutable {
        params.ifindexes = ifindexes.data();
        params.snaplens = snaplens.data();
        CaptureResult result = RunCapture(ring, *state, thread_out, params, latency_ms, buffer_bytes, thread_wait);
        close(thread_wait);
        close(thread_out);
        // `self` lives until this callback: self_while_capturing_ holds its JS object.
        done.BlockingCall([self, state, result](Napi::Env env, Napi::Function callback) {
          if (self->capture_ == state) self->ReapCapture(false);
          Napi::Value error = result.error == 0 ? env.Null() : MakeBpfError(env, result.what, result.error, "").Value();
          Napi::Object keep = self->self_while_capturing_.Value();
          self->self_while_capturing_.Reset();
          callback.Call(keep, {error, Napi::Number::New(env, result.packets), Napi::Number::New(env, result.bytes)});
        });
        done.Release();
        std::lock_guard<std::mutex> lock(state->mu);
        state->finished = true;
        state->cv.notify_all();
      });
    } catch (const std::system_error& e) {
      done.Release();
      throw MakeBpfError(env, "start capture thread", e.code().value(), "");
    }
    own_fd.release();
    wait_fd.release();
    capture_ = state;
    // The JS object (and so this reader) stays alive until the thread has reported.
    self_while_capturing_ = Napi::Persistent(info.This().As<Napi::Object>());
    return env.Undefined();
  }

  // Ends a capture: the thread writes what already waits in the ring (at most one ring's
  // worth, the producer may go on), then reports.
  Napi::Value StopCapture(const Napi::CallbackInfo& info) {
    if (capture_ != nullptr) capture_->Signal();
    return info.Env().Undefined();
  }

  // Called on the JS thread when the capture thread has reported (from the thread's own
  // callback through ReapCapture) or by close().
  void ReapCapture(bool abandon) {
    std::shared_ptr<CaptureState> state = std::move(capture_);
    capture_ = nullptr;
    if (state == nullptr) return;
    if (abandon) state->abandon.store(true, std::memory_order_release);
    state->Signal();
    bool finished;
    {
      std::unique_lock<std::mutex> lock(state->mu);
      finished = state->cv.wait_for(lock, kCloseWait, [&] { return state->finished; });
    }
    if (finished)
      state->thread.join();
    else
      state->thread.detach();
  }

  // As cilium/ebpf's Reader.Close: interrupt the capture thread, then take the ring's lock
  // before unmapping, so nothing reads the mapping after it is gone. Returns within
  // kCloseWait whatever the thread is doing.
  void Close() {
    ReapCapture(true);
    if (ring_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      ring_->Unmap();
    }
    ring_ = nullptr;
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    if (!area_.IsEmpty()) {
      area_.Value().Detach();
      area_.Reset();
    }
    Close();
    return info.Env().Undefined();
  }

  Napi::Value CapturingJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), capture_ != nullptr); }
  Napi::Value EpollFdJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_ == nullptr ? -1 : ring_->epoll_fd);
  }

  std::shared_ptr<Ring> ring_;
  std::shared_ptr<CaptureState> capture_;
  Napi::ObjectReference self_while_capturing_;
  // dataArea()'s buffer. JavaScript reaches it only through objects that also hold this
  // reader, so when the reader is collected without close() nothing can read it any more.
  Napi::Reference<Napi::ArrayBuffer> area_;
};

}  // namespace

void InitRingBuf(Napi::Env env, Napi::Object exports) {
  RingReader::Init(env, exports);
}

}  // namespace tcpscope
