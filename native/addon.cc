// SPDX-License-Identifier: MIT
#include <napi.h>

#include "common.h"

namespace tcpscope {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  InitObject(env, exports);
  InitLink(env, exports);
  InitMap(env, exports);
  InitRingBuf(env, exports);
  InitPerfBuf(env, exports);
  InitMisc(env, exports);
  InitPcapng(env, exports);
  InitCapture(env, exports);
  return exports;
}

}  // namespace tcpscope

static Napi::Object InitTcpscope(Napi::Env env, Napi::Object exports) { return tcpscope::Init(env, exports); }

NODE_API_MODULE(tcpscope, InitTcpscope)
