// SPDX-License-Identifier: MIT
// Map and fd operations. They take raw fds so maps found by name, opened from a pin or
// shared between objects all go through one path.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace tcpscope {

namespace {

int FdArg(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }

Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Bytes key = BytesArg(info[1], "key");
  Bytes value = BytesArg(info[2], "value");
  uint64_t flags = info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  int err = bpf_map_lookup_elem_flags(FdArg(info[0]), key.data, value.data, flags);
  if (err == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  throw MakeBpfError(info.Env(), "map lookup", errno, "");
}

Napi::Value Update(const Napi::CallbackInfo& info) {
  Bytes key = BytesArg(info[1], "key");
  Bytes value = BytesArg(info[2], "value");
  uint64_t flags = info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(FdArg(info[0]), key.data, value.data, flags) != 0)
    throw MakeBpfError(info.Env(), "map update", errno, "");
  return info.Env().Undefined();
}

Napi::Value Delete(const Napi::CallbackInfo& info) {
  Bytes key = BytesArg(info[1], "key");
  if (bpf_map_delete_elem(FdArg(info[0]), key.data) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  throw MakeBpfError(info.Env(), "map delete", errno, "");
}

// nextKey(fd, key | null, out) -> boolean (false at the end)
Napi::Value NextKey(const Napi::CallbackInfo& info) {
  Bytes out = BytesArg(info[2], "next key");
  const void* key = info[1].IsNull() || info[1].IsUndefined() ? nullptr : BytesArg(info[1], "key").data;
  if (bpf_map_get_next_key(FdArg(info[0]), key, out.data) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  throw MakeBpfError(info.Env(), "map next key", errno, "");
}

// dumpBatch(fd, keys, values, keySize, valueStride, capacity) -> entries read, or -1 when
// the kernel or map type has no batch lookup (the caller falls back to iteration).
Napi::Value DumpBatch(const Napi::CallbackInfo& info) {
  int fd = FdArg(info[0]);
  Bytes keys = BytesArg(info[1], "keys");
  Bytes values = BytesArg(info[2], "values");
  uint32_t key_size = info[3].As<Napi::Number>().Uint32Value();
  uint32_t value_stride = info[4].As<Napi::Number>().Uint32Value();
  uint32_t capacity = info[5].As<Napi::Number>().Uint32Value();
  if (static_cast<uint64_t>(capacity) * key_size > keys.length ||
      static_cast<uint64_t>(capacity) * value_stride > values.length)
    throw Napi::RangeError::New(info.Env(), "batch buffers are smaller than capacity entries");
  // The batch token is opaque: a bucket index for hash maps, a key for arrays.
  std::vector<uint8_t> in_token(key_size < 8 ? 8 : key_size), out_token(in_token.size());
  bool first = true;
  uint32_t total = 0;
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
  while (total < capacity) {
    uint32_t count = capacity - total;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : in_token.data(), out_token.data(),
                                   keys.data + static_cast<size_t>(total) * key_size,
                                   values.data + static_cast<size_t>(total) * value_stride, &count, &opts);
    int saved = errno;
    total += count;
    if (err != 0) {
      if (saved == ENOENT) break;  // no more entries
      if (first && (saved == EINVAL || saved == ENOTSUP || saved == EOPNOTSUPP || saved == 524))
        return Napi::Number::New(info.Env(), -1);
      // ENOSPC: one hash bucket holds more entries than the space left.
      if (saved == ENOSPC) break;
      throw MakeBpfError(info.Env(), "map batch lookup", saved, "");
    }
    first = false;
    in_token.swap(out_token);
  }
  return Napi::Number::New(info.Env(), total);
}

// What kind of BPF object an fd is ("map", "prog", "link"...), from its anon inode name;
// get_info_by_fd would happily fill a map_info from a program.
std::string BpfFdKind(int fd) {
  char path[64], target[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n < 0) return "";
  target[n] = 0;
  const char prefix[] = "anon_inode:bpf-";
  if (strncmp(target, prefix, sizeof(prefix) - 1) != 0) return "not a BPF object";
  return target + sizeof(prefix) - 1;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info[0]);
  std::string kind = BpfFdKind(fd);
  if (!kind.empty() && kind != "map") {
    Napi::Error error = MakeBpfError(env, "map info", EINVAL, "");
    error.Set("message", Napi::String::New(env, "map info: the object is a " + kind + ", not a map"));
    throw error;
  }
  struct bpf_map_info map_info = {};
  __u32 len = sizeof(map_info);
  if (bpf_obj_get_info_by_fd(fd, &map_info, &len) != 0)
    throw MakeBpfError(env, "map info", errno, "");
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", map_info.id);
  out.Set("type", map_info.type);
  const char* type_name = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(map_info.type));
  out.Set("typeName", type_name ? type_name : "unknown");
  out.Set("name", map_info.name);
  out.Set("keySize", map_info.key_size);
  out.Set("valueSize", map_info.value_size);
  out.Set("maxEntries", map_info.max_entries);
  out.Set("flags", map_info.map_flags);
  out.Set("btfId", map_info.btf_id);
  out.Set("btfValueTypeId", map_info.btf_value_type_id);
  out.Set("btfKeyTypeId", map_info.btf_key_type_id);
  return out;
}

Napi::Object ProgInfoObject(Napi::Env env, const struct bpf_prog_info& prog_info) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", prog_info.id);
  out.Set("type", prog_info.type);
  out.Set("name", prog_info.name);
  out.Set("runCount", static_cast<double>(prog_info.run_cnt));
  out.Set("runTimeNs", static_cast<double>(prog_info.run_time_ns));
  return out;
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_prog_info prog_info = {};
  __u32 len = sizeof(prog_info);
  if (bpf_obj_get_info_by_fd(FdArg(info[0]), &prog_info, &len) != 0)
    throw MakeBpfError(env, "program info", errno, "");
  return ProgInfoObject(env, prog_info);
}

// progInfoById(id) -> info, or null when no such program exists (any more).
Napi::Value ProgInfoById(const Napi::CallbackInfo& info) {
  int fd = bpf_prog_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
  if (fd < 0) {
    if (errno == ENOENT) return info.Env().Null();
    throw MakeBpfError(info.Env(), "open program by id", errno, "");
  }
  struct bpf_prog_info prog_info = {};
  __u32 len = sizeof(prog_info);
  int err = bpf_obj_get_info_by_fd(fd, &prog_info, &len) == 0 ? 0 : errno;
  close(fd);
  if (err) throw MakeBpfError(info.Env(), "program info", err, "");
  return ProgInfoObject(info.Env(), prog_info);
}

// progQuery(targetFdOrIfindex, attachType) -> program ids attached there (tcx, cgroup...).
Napi::Value ProgQuery(const Napi::CallbackInfo& info) {
  __u32 ids[64];
  __u32 count = 64;
  __u32 attach_flags = 0;
  int err = bpf_prog_query(info[0].As<Napi::Number>().Int32Value(),
                           static_cast<enum bpf_attach_type>(info[1].As<Napi::Number>().Uint32Value()), 0,
                           &attach_flags, ids, &count);
  if (err) {
    // An interface without any tcx program, or a kernel without tcx, has nothing attached.
    if (errno == ENOENT || errno == EINVAL) return Napi::Array::New(info.Env());
    throw MakeBpfError(info.Env(), "query attached programs", errno, "");
  }
  Napi::Array out = Napi::Array::New(info.Env(), count);
  for (__u32 i = 0; i < count; i++) out.Set(i, ids[i]);
  return out;
}

// xdpQuery(ifindex) -> { skb, drv, hw } program ids (0 when none).
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  DECLARE_LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int err = bpf_xdp_query(info[0].As<Napi::Number>().Int32Value(), 0, &opts);
  if (err) throw MakeBpfError(info.Env(), "query XDP", err, "");
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("skb", opts.skb_prog_id);
  out.Set("drv", opts.drv_prog_id);
  out.Set("hw", opts.hw_prog_id);
  return out;
}

Napi::Value Pin(const Napi::CallbackInfo& info) {
  std::string path = info[1].As<Napi::String>();
  if (bpf_obj_pin(FdArg(info[0]), path.c_str()) != 0)
    throw MakeBpfError(info.Env(), "pin at " + path, errno, "");
  return info.Env().Undefined();
}

Napi::Value GetPinned(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) throw MakeBpfError(info.Env(), "open pinned object " + path, errno, "");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = FdArg(info[0]);
  if (fd >= 0) close(fd);
  return info.Env().Undefined();
}

Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  // mapCreate(type, name, keySize, valueSize, maxEntries, flags)
  Napi::Env env = info.Env();
  std::string name = info[1].As<Napi::String>();
  DECLARE_LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = info[5].As<Napi::Number>().Uint32Value());
  LogCapture capture;
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(info[0].As<Napi::Number>().Uint32Value()),
                          name.c_str(), info[2].As<Napi::Number>().Uint32Value(),
                          info[3].As<Napi::Number>().Uint32Value(), info[4].As<Napi::Number>().Uint32Value(),
                          &opts);
  if (fd < 0) throw MakeBpfError(env, "create map '" + name + "'", errno, capture.Take());
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitMap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New(env, Lookup));
  exports.Set("mapUpdate", Napi::Function::New(env, Update));
  exports.Set("mapDelete", Napi::Function::New(env, Delete));
  exports.Set("mapNextKey", Napi::Function::New(env, NextKey));
  exports.Set("mapDumpBatch", Napi::Function::New(env, DumpBatch));
  exports.Set("mapInfo", Napi::Function::New(env, Info));
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("progInfoById", Napi::Function::New(env, ProgInfoById));
  exports.Set("progQuery", Napi::Function::New(env, ProgQuery));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("objPin", Napi::Function::New(env, Pin));
  exports.Set("objGet", Napi::Function::New(env, GetPinned));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
}

}  // namespace tcpscope
