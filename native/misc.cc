// SPDX-License-Identifier: MIT
// Small kernel facilities the JS layer needs: fd readiness through libuv, program test
// runs, feature probes and interface names.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <vector>

#include "common.h"

namespace tcpscope {

namespace {

// Watches an fd for readability on the Node event loop: no thread, no busy polling.
// start(timeoutMs) arms it once: the fd turning readable or the timeout, whichever comes
// first, stops it and calls back (status < 0: a poll error, 0: readable, 1: timed out).
// One native timer beside the poll, rather than a setTimeout per wait: a 10 ms reader
// waits a hundred times a second, and a JS timer's bookkeeping (a Timeout object, Node's
// timer lists, clearTimeout) is paid on each wake-up, when the process's caches are cold.
class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "FdWatcher",
                                    {InstanceMethod("start", &FdWatcher::Start), InstanceMethod("stop", &FdWatcher::Stop),
                                     InstanceMethod("close", &FdWatcher::CloseJs)});
    exports.Set("FdWatcher", fn);
  }

  // new FdWatcher(fd, onReady)
  explicit FdWatcher(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<FdWatcher>(info), context_(info.Env(), "tcpscope:FdWatcher") {
    Napi::Env env = info.Env();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    handle_ = new uv_poll_t();
    int err = uv_poll_init(loop, handle_, info[0].As<Napi::Number>().Int32Value());
    if (err != 0) {
      delete handle_;
      handle_ = nullptr;
      throw Napi::Error::New(env, std::string("watch fd: ") + uv_strerror(err));
    }
    handle_->data = this;
    timer_ = new uv_timer_t();
    uv_timer_init(loop, timer_);
    timer_->data = this;
  }

  // At environment teardown finalizers run even for referenced objects; their references
  // are already being torn down, so the destructor must not touch them.
  ~FdWatcher() override { Release(false); }

 private:
  static void OnReady(uv_poll_t* handle, int status, int events) {
    (void)events;
    auto* self = static_cast<FdWatcher*>(handle->data);
    if (self != nullptr) self->Fire(status < 0 ? status : 0);
  }

  static void OnTimeout(uv_timer_t* timer) {
    auto* self = static_cast<FdWatcher*>(timer->data);
    if (self != nullptr) self->Fire(1);
  }

  void Fire(int status) {
    Disarm();
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    // An exception must not unwind through libuv: hand a JS error to Node's uncaught
    // exception handling, and ignore failures while the environment shuts down.
    try {
      callback_.MakeCallback(Value(), {Napi::Number::New(env, status)}, context_);
    } catch (const Napi::Error& e) {
      if (!e.Value().IsEmpty()) napi_fatal_exception(env, e.Value());
    }
    // The JS object may be collected once unreferenced: the callback ran with it in hand.
    if (unref_after_fire_) {
      unref_after_fire_ = false;
      Unref();
    }
  }

  // Stops the poll and the timer; the reference that keeps the JS object alive while armed
  // is dropped after the callback (Fire) or at once (Stop).
  void Disarm() {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    if (timer_ != nullptr) uv_timer_stop(timer_);
    if (active_) unref_after_fire_ = true;
    active_ = false;
  }

  void Release(bool unref = true) {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
    uv_timer_stop(timer_);
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
    if ((active_ || unref_after_fire_) && unref) Unref();
    active_ = false;
    unref_after_fire_ = false;
  }

  // start(timeoutMs?): a positive finite timeout arms the timer too.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (handle_ == nullptr) throw Napi::Error::New(info.Env(), "watcher is closed");
    int err = uv_poll_start(handle_, UV_READABLE, &FdWatcher::OnReady);
    if (err != 0) throw Napi::Error::New(info.Env(), std::string("watch fd: ") + uv_strerror(err));
    if (info.Length() > 0 && info[0].IsNumber()) {
      double ms = info[0].As<Napi::Number>().DoubleValue();
      if (ms > 0 && ms < 1e12) uv_timer_start(timer_, &FdWatcher::OnTimeout, static_cast<uint64_t>(std::ceil(ms)), 0);
    }
    if (!active_ && !unref_after_fire_) Ref();  // the JS object must outlive a pending callback
    unref_after_fire_ = false;
    active_ = true;
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    bool was_active = active_;
    Disarm();
    if (was_active) {
      unref_after_fire_ = false;
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  uv_poll_t* handle_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool active_ = false;
  // Set by Fire's Disarm: the reference taken by Start is dropped once the callback returned
  // (unless the callback armed the watcher again, which keeps it).
  bool unref_after_fire_ = false;
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
};

// testRun(progFd, { data?, dataOutSize?, ctx?, ctxOutSize?, repeat?, flags?, cpu? })
// Every option is read (which may run user getters) before any bytes are taken, and the
// input bytes are copied: no pointer into a JS buffer is held while JS can run.
Napi::Value TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "test run options must be an object");
  Napi::Object options = info[1].As<Napi::Object>();
  Napi::Value data_value = options.Get("data");
  Napi::Value data_out_size = options.Get("dataOutSize");
  Napi::Value ctx_value = options.Get("ctx");
  Napi::Value repeat = options.Get("repeat");
  Napi::Value flags = options.Get("flags");
  Napi::Value cpu = options.Get("cpu");
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts);
  std::vector<uint8_t> data_in, data_out, ctx_in, ctx_out;
  bool has_data = !data_value.IsUndefined() && !data_value.IsNull();
  bool has_ctx = !ctx_value.IsUndefined() && !ctx_value.IsNull();
  uint32_t out_size = data_out_size.IsNumber() ? data_out_size.As<Napi::Number>().Uint32Value() : 0;
  if (repeat.IsNumber()) opts.repeat = repeat.As<Napi::Number>().Uint32Value();
  if (flags.IsNumber()) opts.flags = flags.As<Napi::Number>().Uint32Value();
  if (cpu.IsNumber()) opts.cpu = cpu.As<Napi::Number>().Uint32Value();
  // From here on no JS runs until the kernel has answered.
  if (has_data) {
    Bytes data = BytesArg(data_value, "data");
    data_in.assign(data.data, data.data + data.length);
    if (!data_out_size.IsNumber()) out_size = static_cast<uint32_t>(data_in.size()) + 256;
    data_out.resize(out_size);
    opts.data_in = data_in.data();
    opts.data_size_in = static_cast<__u32>(data_in.size());
    opts.data_out = data_out.data();
    opts.data_size_out = out_size;
  }
  if (has_ctx) {
    Bytes ctx = BytesArg(ctx_value, "ctx");
    ctx_in.assign(ctx.data, ctx.data + ctx.length);
    ctx_out.resize(ctx_in.size());
    opts.ctx_in = ctx_in.data();
    opts.ctx_size_in = static_cast<__u32>(ctx_in.size());
    opts.ctx_out = ctx_out.data();
    opts.ctx_size_out = static_cast<__u32>(ctx_out.size());
  }
  LogCapture capture;
  if (bpf_prog_test_run_opts(fd, &opts) != 0) throw MakeBpfError(env, "test run", errno, capture.Take());
  Napi::Object out = Napi::Object::New(env);
  out.Set("retval", opts.retval);
  out.Set("durationNs", opts.duration);
  if (opts.data_out != nullptr)
    out.Set("data", Napi::Buffer<uint8_t>::Copy(env, data_out.data(), std::min<size_t>(opts.data_size_out, data_out.size())));
  if (opts.ctx_out != nullptr)
    out.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, ctx_out.data(), std::min<size_t>(opts.ctx_size_out, ctx_out.size())));
  return out;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) throw MakeBpfError(info.Env(), "count possible CPUs", n, "");
  return Napi::Number::New(info.Env(), n);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

Napi::Value IfIndexToName(const Napi::CallbackInfo& info) {
  char name[IF_NAMESIZE] = {0};
  if (if_indextoname(info[0].As<Napi::Number>().Uint32Value(), name) == nullptr) return info.Env().Null();
  return Napi::String::New(info.Env(), name);
}

}  // namespace

void InitMisc(Napi::Env env, Napi::Object exports) {
  FdWatcher::Init(env, exports);
  exports.Set("testRun", Napi::Function::New(env, TestRun));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
  exports.Set("ifIndexToName", Napi::Function::New(env, IfIndexToName));
}

}  // namespace tcpscope
