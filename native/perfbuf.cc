// SPDX-License-Identifier: MIT
// Perf event array reader over libbpf's perf_buffer. Records are copied into a pending
// queue by libbpf's per-record callback and handed to JS in batches, in the same framing
// as ring buffer batches: [u32 length][u32 cpu][data, padded to 8 bytes].
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace tcpscope {

namespace {

class PerfReader : public Napi::ObjectWrap<PerfReader> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativePerfReader",
                                    {InstanceMethod("consume", &PerfReader::Consume),
                                     InstanceMethod("close", &PerfReader::CloseJs),
                                     InstanceAccessor("epollFd", &PerfReader::EpollFd, nullptr),
                                     InstanceAccessor("lost", &PerfReader::Lost, nullptr)});
    exports.Set("NativePerfReader", fn);
  }

  // new NativePerfReader(mapFd, pagesPerCpu)
  explicit PerfReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PerfReader>(info) {
    Napi::Env env = info.Env();
    LogCapture capture;
    buffer_ = perf_buffer__new(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(),
                               &PerfReader::OnSample, &PerfReader::OnLost, this, nullptr);
    int err = libbpf_get_error(buffer_);
    if (err) {
      buffer_ = nullptr;
      throw MakeBpfError(env, "open perf buffer", err, capture.Take());
    }
  }

  ~PerfReader() override { Free(); }

 private:
  static void OnSample(void* ctx, int cpu, void* data, __u32 size) {
    auto* self = static_cast<PerfReader*>(ctx);
    size_t at = self->pending_.size();
    size_t record = (8 + size + 7) & ~static_cast<size_t>(7);
    self->pending_.resize(at + record);
    uint32_t header[2] = {size, static_cast<uint32_t>(cpu)};
    memcpy(&self->pending_[at], header, 8);
    memcpy(&self->pending_[at + 8], data, size);
  }

  static void OnLost(void* ctx, int cpu, __u64 count) {
    (void)cpu;
    static_cast<PerfReader*>(ctx)->lost_ += count;
  }

  void Free() {
    if (buffer_ != nullptr) perf_buffer__free(buffer_);
    buffer_ = nullptr;
  }

  // consume(target) -> bytes written
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (buffer_ == nullptr) throw Napi::Error::New(env, "perf buffer reader is closed");
    Bytes target = BytesArg(info[0], "target");
    if (pending_.size() - offset_ < target.length) {
      int err = perf_buffer__consume(buffer_);
      if (err < 0 && err != -EINTR) throw MakeBpfError(env, "consume perf buffer", err, "");
    }
    size_t end = offset_;
    while (end < pending_.size()) {
      uint32_t size;
      memcpy(&size, &pending_[end], 4);
      size_t record = (8 + size + 7) & ~static_cast<size_t>(7);
      if (end - offset_ + record > target.length) {
        if (end == offset_) throw Napi::RangeError::New(env, "a perf record is larger than the batch buffer");
        break;
      }
      end += record;
    }
    size_t bytes = end - offset_;
    if (bytes) memcpy(target.data, &pending_[offset_], bytes);
    offset_ = end;
    if (offset_ == pending_.size()) {
      pending_.clear();
      offset_ = 0;
    }
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }
  Napi::Value EpollFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), buffer_ ? perf_buffer__epoll_fd(buffer_) : -1);
  }
  Napi::Value Lost(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(lost_)); }

  struct perf_buffer* buffer_ = nullptr;
  std::vector<uint8_t> pending_;
  size_t offset_ = 0;
  uint64_t lost_ = 0;
};

}  // namespace

void InitPerfBuf(Napi::Env env, Napi::Object exports) { PerfReader::Init(env, exports); }

}  // namespace tcpscope
