// SPDX-License-Identifier: MIT
#include "common.h"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tcpscope {

namespace {
thread_local LogCapture* active_capture = nullptr;
thread_local std::string* active_text = nullptr;
bool debug_to_stderr = false;

int PrintFromLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !debug_to_stderr) return 0;
  char stack[1024];
  va_list copy;
  va_copy(copy, args);
  int needed = vsnprintf(stack, sizeof(stack), format, copy);
  va_end(copy);
  std::string text;
  if (needed >= 0 && static_cast<size_t>(needed) < sizeof(stack)) {
    text.assign(stack, needed);
  } else if (needed >= 0) {
    text.resize(needed + 1);
    vsnprintf(&text[0], text.size(), format, args);
    text.resize(needed);
  }
  if (debug_to_stderr) fputs(text.c_str(), stderr);
  AppendToActiveCapture(text);
  return 0;
}
}  // namespace

void AppendToActiveCapture(const std::string& text) {
  if (active_text != nullptr) active_text->append(text);
}

LogCapture::LogCapture() : previous_(active_capture) {
  active_capture = this;
  if (previous_ == nullptr) active_text = new std::string();
}

LogCapture::~LogCapture() {
  active_capture = previous_;
  if (previous_ == nullptr) {
    delete active_text;
    active_text = nullptr;
  }
}

std::string LogCapture::Take() {
  if (active_text == nullptr) return "";
  std::string out;
  out.swap(*active_text);
  return out;
}

void InstallLibbpfPrint() {
  const char* debug = getenv("TCPSCOPE_LIBBPF_DEBUG");
  debug_to_stderr = debug != nullptr && debug[0] != '\0' && debug[0] != '0';
  libbpf_set_print(PrintFromLibbpf);
}

const char* ErrnoName(int errnum) {
  switch (errnum) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(E2BIG)
    NAME(ENOEXEC) NAME(EBADF) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EFAULT)
    NAME(EBUSY) NAME(EEXIST) NAME(ENODEV) NAME(ENOTDIR) NAME(EISDIR) NAME(EINVAL)
    NAME(ENFILE) NAME(EMFILE) NAME(ENOSPC) NAME(ERANGE) NAME(ENOSYS)
    NAME(ELOOP) NAME(ENAMETOOLONG) NAME(EOVERFLOW) NAME(ENODATA) NAME(EPROTO)
    NAME(EOPNOTSUPP) NAME(ENOTSOCK) NAME(EAFNOSUPPORT) NAME(EPIPE) NAME(EFBIG) NAME(EDQUOT)
#undef NAME
    case 524:
      return "ENOTSUPP";
    case LIBBPF_ERRNO__LIBELF: return "LIBBPF_ERRNO__LIBELF";
    case LIBBPF_ERRNO__FORMAT: return "LIBBPF_ERRNO__FORMAT";
    case LIBBPF_ERRNO__KVERSION: return "LIBBPF_ERRNO__KVERSION";
    case LIBBPF_ERRNO__ENDIAN: return "LIBBPF_ERRNO__ENDIAN";
    case LIBBPF_ERRNO__INTERNAL: return "LIBBPF_ERRNO__INTERNAL";
    case LIBBPF_ERRNO__RELOC: return "LIBBPF_ERRNO__RELOC";
    case LIBBPF_ERRNO__LOAD: return "LIBBPF_ERRNO__LOAD";
    case LIBBPF_ERRNO__VERIFY: return "LIBBPF_ERRNO__VERIFY";
    case LIBBPF_ERRNO__PROG2BIG: return "LIBBPF_ERRNO__PROG2BIG";
    case LIBBPF_ERRNO__KVER: return "LIBBPF_ERRNO__KVER";
    case LIBBPF_ERRNO__PROGTYPE: return "LIBBPF_ERRNO__PROGTYPE";
    case LIBBPF_ERRNO__WRNGPID: return "LIBBPF_ERRNO__WRNGPID";
    case LIBBPF_ERRNO__INVSEQ: return "LIBBPF_ERRNO__INVSEQ";
    case LIBBPF_ERRNO__NLPARSE: return "LIBBPF_ERRNO__NLPARSE";
    default:
      return "EUNKNOWN";
  }
}

Napi::Error MakeBpfError(Napi::Env env, const std::string& operation, int errnum,
                         const std::string& log) {
  if (errnum < 0) errnum = -errnum;
  // libbpf's own codes (4000..) mean nothing to strerror: ask libbpf for its text.
  char text[256] = {0};
  if (errnum != 524) libbpf_strerror(errnum, text, sizeof(text));
  std::string reason = errnum == 524 ? "Operation not supported by this kernel" : std::string(text);
  Napi::Error error = Napi::Error::New(env, operation + ": " + reason);
  error.Set("errno", Napi::Number::New(env, errnum));
  error.Set("code", Napi::String::New(env, ErrnoName(errnum)));
  error.Set("operation", Napi::String::New(env, operation));
  error.Set("libbpfLog", Napi::String::New(env, log));
  return error;
}

Bytes BytesArg(const Napi::Value& value, const char* what) {
  Bytes bytes;
  if (value.IsTypedArray()) {
    Napi::TypedArray array = value.As<Napi::TypedArray>();
    bytes.data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    bytes.length = array.ByteLength();
  } else if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
    bytes.data = static_cast<uint8_t*>(buffer.Data());
    bytes.length = buffer.ByteLength();
  } else if (value.IsDataView()) {
    Napi::DataView view = value.As<Napi::DataView>();
    bytes.data = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
    bytes.length = view.ByteLength();
  } else {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a Uint8Array or ArrayBuffer");
  }
  return bytes;
}

}  // namespace tcpscope
