// A BPF ring buffer consumer of our own: libbpf's ring_buffer__consume calls a C function
// per record and cannot stop before a record without consuming it. Here one call copies
// every committed record that fits, in kernel layout, into a JS-owned buffer with a single
// memcpy (the kernel maps the data area twice, so a wrapped run is contiguous), then
// releases them all with one store to the consumer position.
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

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

  ~RingReader() override { Unmap(); }

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
    size_t consumed = 0;
    double packets = 0;
    for (;;) {
      unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
      unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
      PcapngResult r = EncodePcapngBlocks(data_ + (cons & mask_), prod - cons, out.data, out.length, at, params);
      consumed += r.src_end;
      packets += r.packets;
      params.max_packets -= r.packets;
      at = r.out_end;
      if (!Release(cons + r.src_end, prod)) break;
    }
    positions[0] = static_cast<double>(consumed);
    positions[1] = static_cast<double>(at);
    return Napi::Number::New(env, packets);
  }

  Napi::Value Pending(const Napi::CallbackInfo& info) {
    if (data_ == nullptr) return Napi::Number::New(info.Env(), 0);
    unsigned long cons = ConsumerPos()->load(std::memory_order_relaxed);
    unsigned long prod = ProducerPos()->load(std::memory_order_acquire);
    return Napi::Number::New(info.Env(), static_cast<double>(prod - cons));
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
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
};

}  // namespace

void InitRingBuf(Napi::Env env, Napi::Object exports) {
  RingReader::Init(env, exports);
}

}  // namespace tcpscope
