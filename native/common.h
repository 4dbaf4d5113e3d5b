// SPDX-License-Identifier: MIT
// Shared helpers for the addon: libbpf log capture and errno-carrying JS errors.
#pragma once

#include <napi.h>
#include <string>

namespace tcpscope {

// libbpf reports through a process-wide print callback. We never let it write to stderr:
// every native call that may log runs inside a LogCapture and attaches what was said to
// the error it throws (or drops it on success unless TCPSCOPE_LIBBPF_DEBUG is set).
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::string Take();

 private:
  LogCapture* previous_;
};

void InstallLibbpfPrint();
void AppendToActiveCapture(const std::string& text);

// Throws a JS Error whose .errno is positive, .code is the errno name and .libbpfLog holds
// whatever libbpf said during the failing call.
Napi::Error MakeBpfError(Napi::Env env, const std::string& operation, int errnum,
                         const std::string& log);

const char* ErrnoName(int errnum);

// Typed array/Buffer arguments as (pointer, length) without copying.
struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};
Bytes BytesArg(const Napi::Value& value, const char* what);

void InitObject(Napi::Env env, Napi::Object exports);
void InitLink(Napi::Env env, Napi::Object exports);
void InitMap(Napi::Env env, Napi::Object exports);
void InitRingBuf(Napi::Env env, Napi::Object exports);
void InitPerfBuf(Napi::Env env, Napi::Object exports);
void InitMisc(Napi::Env env, Napi::Object exports);
void InitPcapng(Napi::Env env, Napi::Object exports);
void InitCapture(Napi::Env env, Napi::Object exports);

}  // namespace tcpscope
