// SPDX-License-Identifier: MIT
// A BPF ring buffer consumer of our own: libbpf's ring_buffer__consume calls a C function
// per record and cannot stop before a record without consuming it. Here one call indexes
// every committed record that fits and lends them to JavaScript in place (the kernel maps
// the data area twice, so a wrapped run is contiguous); the next call releases them all
// with one store to the consumer position. Callers that keep the bytes copy them in JS
// (RecordBatch.copy()).
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

  // Where the zero-copy reader's batch ends: records from the consumer position up to here
  // are lent to JavaScript and released (the consumer position moved here) by the reader's
  // next read, Commit() or Unmap(), never while JavaScript may still read them.
  unsigned long lent_end = 0;
  bool lent = false;

  // Before the reader sleeps with records possibly still waiting (it read some and chose
  // not to look again at once): gives the lent records back, so the producer's wake-ups
  // resume (it wakes a reader only once the consumer has caught up), and clears the
  // wake-ups already reported, which are for records the reader knows of: left pending they
  // would end every sleep at once. Callers hold mu.
  void CommitForSleep() {
    Commit();
    struct epoll_event event;
    while (epoll_wait(epoll_fd, &event, 1, 0) > 0) {
    }
  }

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
                                    {InstanceMethod("dataArea", &RingReader::DataArea),
                                     InstanceMethod("lend", &RingReader::Lend),
                                     InstanceMethod("commitForSleep", &RingReader::CommitForSleepJs),
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
  // start. They stay in the ring until the next lend() or close().
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

  // commitForSleep(): see Ring::CommitForSleep.
  Napi::Value CommitForSleepJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireJsConsumer(env, "read the ring buffer");
    std::lock_guard<std::mutex> lock(ring_->mu);
    ring_->CommitForSleep();
    return env.Undefined();
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
    if (!area_.IsEmpty()) {
      area_.Value().Detach();
      area_.Reset();
    }
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
  // dataArea()'s buffer. JavaScript reaches it only through objects that also hold this
  // reader, so when the reader is collected without close() nothing can read it any more.
  Napi::Reference<Napi::ArrayBuffer> area_;
};

}  // namespace

std::mutex& RingMutex(Ring& ring) { return ring.mu; }

RingSpan RingPending(Ring& ring) {
  RingSpan span;
  if (ring.data == nullptr) return span;
  // Records lent to JavaScript before a native consumer took over are released first.
  ring.Commit();
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
