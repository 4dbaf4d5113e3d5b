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
#include "ringbuf.h"

namespace tcpscope {

namespace {

constexpr uint32_t kBusyBit = 1u << 31;
constexpr uint32_t kDiscardBit = 1u << 30;
constexpr uint32_t kHeaderSize = 8;
// close() waits this long for a ring thread to see it was abandoned; a thread that has
// not ended by then (a write() into a file system that does not return) is left to end on
// its own: it owns everything it still touches.
constexpr auto kCloseWait = std::chrono::seconds(1);
// Tags NativeRingReader objects, so that a native consumer handed some other object refuses it.
constexpr napi_type_tag kRingReaderTag = {0x7463707363306570ULL, 0x72696e6752656164ULL};

// One consumer per ring in this process: two would both advance consumer_pos and hand
// the same records out twice or skip some. Keyed by map id, which the kernel does not
// reuse while the reader's mappings keep the map alive.
std::mutex g_lease_mu;
std::unordered_set<uint32_t> g_leased;

}  // namespace

// The mapped ring, shared by its reader and the reader's ring thread (ringbuf.h). `mu` is held by
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

  // Where ReadInto indexes the records it copies: payload offset and length of each record
  // not discarded, up to `capacity` of them.
  struct Index {
    uint32_t* offsets = nullptr;
    uint32_t* lengths = nullptr;
    size_t capacity = 0;
    size_t count = 0;
  };

  // Copies every committed record that fits into target, releases them; bytes written, or
  // -1 when the first record alone does not fit (its size in *too_big). With an index, also
  // records where each payload landed (the walk reads every header anyway).
  long ReadInto(uint8_t* target, size_t length, uint32_t* too_big, Index* index = nullptr) {
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
        if (at + record > length || (index != nullptr && index->count == index->capacity)) {
          if (total == 0 && pos == cons) {
            *too_big = record;
            return -1;
          }
          break;
        }
        if (index != nullptr && (len & kDiscardBit) == 0) {
          index->offsets[index->count] = static_cast<uint32_t>(at + kHeaderSize);
          index->lengths[index->count] = len & ~kDiscardBit;
          index->count++;
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

};

namespace {

// What a ring thread and the reader that started it share.
struct ThreadState : RingThreadControl {
  int stop_fd = -1;  // eventfd waking the thread; closed with the state
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread thread;

  ~ThreadState() {
    if (stop_fd >= 0) close(stop_fd);
  }

  void Signal() {
    stop.store(true, std::memory_order_release);
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd, &one, sizeof one);
    (void)ignored;
  }
};

class RingReader : public Napi::ObjectWrap<RingReader> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeRingReader",
                                    {InstanceMethod("consume", &RingReader::Consume),
                                     InstanceMethod("consumeIndexed", &RingReader::ConsumeIndexed),
                                     InstanceMethod("stopThread", &RingReader::StopThread),
                                     InstanceMethod("close", &RingReader::CloseJs),
                                     InstanceAccessor("threadRunning", &RingReader::ThreadRunningJs, nullptr),
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
    info.This().As<Napi::Object>().TypeTag(&kRingReaderTag);
  }

  ~RingReader() override { Close(); }

  // The reader of `value`, or a TypeError naming `what`.
  static RingReader* Of(Napi::Env env, Napi::Value value, const char* what) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kRingReaderTag))
      throw Napi::TypeError::New(env, std::string(what) + ": not a ring buffer reader");
    return Unwrap(value.As<Napi::Object>());
  }

  // The JS-thread consumers refuse while a ring thread holds the ring.
  void RequireJsConsumer(Napi::Env env, const char* what) {
    if (ring_ == nullptr || ring_->data == nullptr) throw Napi::Error::New(env, "ring buffer reader is closed");
    if (thread_ != nullptr)
      throw Napi::Error::New(env, std::string(what) +
                                      ": a native thread is consuming this ring buffer (one consumer per ring); "
                                      "stop it first");
  }

  std::shared_ptr<Ring> JsConsumerRing(Napi::Env env, const char* what) {
    RequireJsConsumer(env, what);
    return ring_;
  }

  // Runs `body` on a thread of its own holding the ring until it returns, stopThread() or
  // close(); then on_done(error | null, records, bytes) runs on the JS thread.
  void StartThread(Napi::Env env, Napi::Object self_object, Napi::Function on_done, const char* what, RingThreadBody body) {
    RequireJsConsumer(env, what);
    // Everything the thread uses it owns: its wait set, the shared ring and state, the
    // body. Each is closed here if starting fails.
    auto state = std::make_shared<ThreadState>();
    state->stop_fd = eventfd(0, EFD_CLOEXEC);
    int wait_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event readable = {};
    readable.events = EPOLLIN;
    if (state->stop_fd < 0 || wait_fd < 0 || epoll_ctl(wait_fd, EPOLL_CTL_ADD, ring_->epoll_fd, &readable) != 0 ||
        epoll_ctl(wait_fd, EPOLL_CTL_ADD, state->stop_fd, &readable) != 0) {
      int err = errno;
      if (wait_fd >= 0) close(wait_fd);
      throw MakeBpfError(env, what, err, "");
    }
    auto done = Napi::ThreadSafeFunction::New(env, on_done, what, 0, 1);
    std::shared_ptr<Ring> ring = ring_;
    RingReader* self = this;
    try {
      state->thread = std::thread([self, ring, state, wait_fd, body = std::move(body), done]() mutable {
        RingThreadResult result = body(ring, *state, wait_fd);
        // What the body owns (an output fd) is released before JavaScript hears it ended.
        body = nullptr;
        close(wait_fd);
        // `self` lives until this callback: self_while_threaded_ holds its JS object.
        done.BlockingCall([self, state, result](Napi::Env env, Napi::Function callback) {
          if (self->thread_ == state) self->ReapThread(false);
          Napi::Value error = result.error == 0 ? env.Null() : MakeBpfError(env, result.what, result.error, "").Value();
          Napi::Object keep = self->self_while_threaded_.Value();
          self->self_while_threaded_.Reset();
          callback.Call(keep, {error, Napi::Number::New(env, result.records), Napi::Number::New(env, result.bytes)});
        });
        done.Release();
        std::lock_guard<std::mutex> lock(state->mu);
        state->finished = true;
        state->cv.notify_all();
      });
    } catch (const std::system_error& e) {
      done.Release();
      close(wait_fd);
      throw MakeBpfError(env, what, e.code().value(), "");
    }
    thread_ = state;
    // The JS object (and so this reader) stays alive until the thread has reported.
    self_while_threaded_ = Napi::Persistent(self_object);
  }

 private:

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

  // consumeIndexed(target: Uint8Array, offsets: Uint32Array, lengths: Uint32Array,
  //                counts: Uint32Array) -> bytes: as consume(), and each record's payload
  // offset and length (discarded ones skipped) into offsets/lengths; counts[0] = records.
  Napi::Value ConsumeIndexed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "read the ring buffer");
    Bytes target = BytesArg(info[0], "target");
    if (info.Length() < 4 || !info[1].IsTypedArray() || !info[2].IsTypedArray() || !info[3].IsTypedArray())
      throw Napi::TypeError::New(env, "consumeIndexed: expected (target, offsets, lengths, counts)");
    Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
    Napi::Uint32Array lengths = info[2].As<Napi::Uint32Array>();
    Napi::Uint32Array counts = info[3].As<Napi::Uint32Array>();
    if (offsets.TypedArrayType() != napi_uint32_array || lengths.TypedArrayType() != napi_uint32_array ||
        counts.TypedArrayType() != napi_uint32_array || counts.ElementLength() < 1)
      throw Napi::TypeError::New(env, "consumeIndexed: offsets, lengths and counts must be Uint32Arrays");
    Ring::Index index;
    index.offsets = offsets.Data();
    index.lengths = lengths.Data();
    index.capacity = std::min(offsets.ElementLength(), lengths.ElementLength());
    uint32_t too_big = 0;
    long total;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      total = ring_->ReadInto(target.data, target.length, &too_big, &index);
    }
    if (total < 0)
      throw Napi::RangeError::New(env, "a ring buffer record (" + std::to_string(too_big) +
                                           " bytes) is larger than the batch buffer");
    counts[0] = static_cast<uint32_t>(index.count);
    return Napi::Number::New(env, static_cast<double>(total));
  }

  // Ends a ring thread: it consumes what already waits in the ring (at most one ring's
  // worth, the producer may go on), then reports.
  Napi::Value StopThread(const Napi::CallbackInfo& info) {
    if (thread_ != nullptr) thread_->Signal();
    return info.Env().Undefined();
  }

  // Called on the JS thread when the ring thread has reported (from the thread's own
  // callback through ReapThread) or by close().
  void ReapThread(bool abandon) {
    std::shared_ptr<ThreadState> state = std::move(thread_);
    thread_ = nullptr;
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

  // As cilium/ebpf's Reader.Close: interrupt the ring thread, then take the ring's lock
  // before unmapping, so nothing reads the mapping after it is gone. Returns within
  // kCloseWait whatever the thread is doing.
  void Close() {
    ReapThread(true);
    if (ring_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(ring_->mu);
      ring_->Unmap();
    }
    ring_ = nullptr;
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  Napi::Value ThreadRunningJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), thread_ != nullptr); }
  Napi::Value EpollFdJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ring_ == nullptr ? -1 : ring_->epoll_fd);
  }

  std::shared_ptr<Ring> ring_;
  std::shared_ptr<ThreadState> thread_;
  Napi::ObjectReference self_while_threaded_;
};

}  // namespace

std::mutex& RingMutex(Ring& ring) { return ring.mu; }

RingSpan RingPending(Ring& ring) {
  RingSpan span;
  if (ring.data == nullptr) return span;
  span.cons = ring.ConsumerPos()->load(std::memory_order_relaxed);
  span.prod = ring.ProducerPos()->load(std::memory_order_acquire);
  span.data = ring.data + (span.cons & ring.mask);
  return span;
}

bool RingRelease(Ring& ring, unsigned long pos, unsigned long prod) { return ring.Release(pos, prod); }

bool RingRecordBusy(Ring& ring, unsigned long pos) {
  uint32_t header = __atomic_load_n(reinterpret_cast<const uint32_t*>(ring.data + (pos & ring.mask)), __ATOMIC_ACQUIRE);
  return (header & kBusyBit) != 0;
}

size_t RingSize(Ring& ring) { return ring.size; }

std::shared_ptr<Ring> RingForJsConsumer(Napi::Env env, Napi::Value reader, const char* what) {
  return RingReader::Of(env, reader, what)->JsConsumerRing(env, what);
}

void StartRingThread(Napi::Env env, Napi::Value reader, Napi::Function on_done, const char* what, RingThreadBody body) {
  RingReader::Of(env, reader, what)->StartThread(env, reader.As<Napi::Object>(), on_done, what, std::move(body));
}

void InitRingBuf(Napi::Env env, Napi::Object exports) {
  RingReader::Init(env, exports);
}

}  // namespace tcpscope
