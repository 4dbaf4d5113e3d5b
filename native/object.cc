// SPDX-License-Identifier: MIT
// BpfObject: one ELF object opened, configured, loaded and attached through libbpf.
// The JS layer validates arguments and shapes the API; this class only maps calls 1:1.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "common.h"
#include "link.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif

namespace tcpscope {

namespace {

constexpr int kAttachTcxIngress = 46;  // BPF_TCX_INGRESS, newer than the uapi headers here
constexpr int kAttachTcxEgress = 47;

std::string OptString(const Napi::Object& spec, const char* key) {
  Napi::Value v = spec.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
int64_t OptInt(const Napi::Object& spec, const char* key, int64_t fallback) {
  Napi::Value v = spec.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}
bool OptBool(const Napi::Object& spec, const char* key) {
  Napi::Value v = spec.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(
        env, "NativeObject",
        {InstanceMethod("programs", &BpfObject::Programs), InstanceMethod("maps", &BpfObject::Maps),
         InstanceMethod("btf", &BpfObject::Btf), InstanceMethod("initialValue", &BpfObject::InitialValue),
         InstanceMethod("setInitialValue", &BpfObject::SetInitialValue),
         InstanceMethod("setAutoload", &BpfObject::SetAutoload),
         InstanceMethod("setMaxEntries", &BpfObject::SetMaxEntries),
         InstanceMethod("load", &BpfObject::Load), InstanceMethod("programFd", &BpfObject::ProgramFd),
         InstanceMethod("mapFd", &BpfObject::MapFd), InstanceMethod("attach", &BpfObject::Attach),
         InstanceMethod("readMapped", &BpfObject::ReadMapped),
         InstanceMethod("writeMapped", &BpfObject::WriteMapped),
         InstanceMethod("close", &BpfObject::Close)});
    exports.Set("NativeObject", fn);
  }

  // new NativeObject(pathOrBytes, { name?, btfCustomPath?, kernelLogLevel? })
  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    Napi::Object options = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    std::string name = OptString(options, "name");
    std::string btf_path = OptString(options, "btfCustomPath");
    DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (!name.empty()) opts.object_name = name.c_str();
    if (!btf_path.empty()) opts.btf_custom_path = btf_path.c_str();
    opts.kernel_log_level = static_cast<__u32>(OptInt(options, "kernelLogLevel", 0));
    LogCapture capture;
    if (info[0].IsString()) {
      std::string path = info[0].As<Napi::String>();
      obj_ = bpf_object__open_file(path.c_str(), &opts);
    } else {
      Bytes bytes = BytesArg(info[0], "object");
      // libbpf keeps pointing at the ELF image until load, so it must outlive this call.
      image_.assign(bytes.data, bytes.data + bytes.length);
      obj_ = bpf_object__open_mem(image_.data(), image_.size(), &opts);
    }
    int err = libbpf_get_error(obj_);
    if (err) {
      obj_ = nullptr;
      throw MakeBpfError(env, "open BPF object", err, capture.Take());
    }
  }

  ~BpfObject() override { CloseObject(); }

 private:
  void CloseObject() {
    for (auto& m : mappings_) munmap(m.second.first, m.second.second);
    mappings_.clear();
    if (obj_ != nullptr) bpf_object__close(obj_);
    obj_ = nullptr;
    image_.clear();
  }

  struct bpf_object* Obj(Napi::Env env) {
    if (obj_ == nullptr) throw Napi::Error::New(env, "BPF object is closed");
    return obj_;
  }

  struct bpf_program* Program(Napi::Env env, const std::string& name) {
    struct bpf_program* prog = bpf_object__find_program_by_name(Obj(env), name.c_str());
    if (prog == nullptr) throw Napi::Error::New(env, "no program named '" + name + "'");
    return prog;
  }

  struct bpf_map* Map(Napi::Env env, const std::string& name) {
    struct bpf_map* map = bpf_object__find_map_by_name(Obj(env), name.c_str());
    if (map == nullptr) throw Napi::Error::New(env, "no map named '" + name + "'");
    return map;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    struct bpf_program* prog;
    uint32_t i = 0;
    bpf_object__for_each_program(prog, Obj(env)) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", bpf_program__name(prog));
      p.Set("section", bpf_program__section_name(prog));
      p.Set("type", static_cast<double>(bpf_program__type(prog)));
      const char* type_name = libbpf_bpf_prog_type_str(bpf_program__type(prog));
      p.Set("typeName", type_name ? type_name : "unknown");
      enum bpf_attach_type attach = bpf_program__expected_attach_type(prog);
      p.Set("expectedAttachType", static_cast<double>(attach));
      const char* attach_name = libbpf_bpf_attach_type_str(attach);
      p.Set("attachTypeName", attach_name ? attach_name : "");
      p.Set("autoload", bpf_program__autoload(prog));
      p.Set("fd", bpf_program__fd(prog));
      out.Set(i++, p);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    struct bpf_map* map;
    uint32_t i = 0;
    bpf_object__for_each_map(map, Obj(env)) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", bpf_map__name(map));
      m.Set("type", static_cast<double>(bpf_map__type(map)));
      const char* type_name = libbpf_bpf_map_type_str(bpf_map__type(map));
      m.Set("typeName", type_name ? type_name : "unknown");
      m.Set("keySize", bpf_map__key_size(map));
      m.Set("valueSize", bpf_map__value_size(map));
      m.Set("maxEntries", bpf_map__max_entries(map));
      m.Set("flags", static_cast<double>(bpf_map__map_flags(map)));
      m.Set("internal", bpf_map__is_internal(map));
      m.Set("fd", bpf_map__fd(map));
      m.Set("btfValueTypeId", bpf_map__btf_value_type_id(map));
      m.Set("btfKeyTypeId", bpf_map__btf_key_type_id(map));
      out.Set(i++, m);
    }
    return out;
  }

  Napi::Value Btf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct btf* btf = bpf_object__btf(Obj(env));
    if (btf == nullptr) return env.Null();
    uint32_t size = 0;
    const void* raw = btf__raw_data(btf, &size);
    if (raw == nullptr) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(raw), size);
  }

  Napi::Value InitialValue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct bpf_map* map = Map(env, info[0].As<Napi::String>());
    size_t size = 0;
    const void* data = bpf_map__initial_value(map, &size);
    if (data == nullptr) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), size);
  }

  Napi::Value SetInitialValue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>();
    struct bpf_map* map = Map(env, name);
    Bytes bytes = BytesArg(info[1], "value");
    LogCapture capture;
    int err = bpf_map__set_initial_value(map, bytes.data, bytes.length);
    if (err) throw MakeBpfError(env, "set initial value of map '" + name + "'", err, capture.Take());
    return env.Undefined();
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>();
    int err = bpf_program__set_autoload(Program(env, name), info[1].As<Napi::Boolean>().Value());
    if (err) throw MakeBpfError(env, "set autoload of program '" + name + "'", err, "");
    return env.Undefined();
  }

  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>();
    int err = bpf_map__set_max_entries(Map(env, name), info[1].As<Napi::Number>().Uint32Value());
    if (err) throw MakeBpfError(env, "set max_entries of map '" + name + "'", err, "");
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    LogCapture capture;
    int err = bpf_object__load(Obj(env));
    std::string log = capture.Take();
    if (err) throw MakeBpfError(env, "load BPF object", err, log);
    // Loading releases the ELF image; libbpf no longer reads it.
    image_.clear();
    image_.shrink_to_fit();
    return Napi::String::New(env, log);
  }

  Napi::Value ProgramFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), bpf_program__fd(Program(info.Env(), info[0].As<Napi::String>())));
  }

  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), bpf_map__fd(Map(info.Env(), info[0].As<Napi::String>())));
  }

  // attach(programName, spec): spec.kind selects the mechanism; the JS layer has already
  // validated every field and resolved interface names to indexes.
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>();
    Napi::Object spec = info[1].As<Napi::Object>();
    std::string kind = OptString(spec, "kind");
    struct bpf_program* prog = Program(env, name);
    int prog_fd = bpf_program__fd(prog);
    if (prog_fd < 0) throw Napi::Error::New(env, "program '" + name + "' is not loaded");
    LogCapture capture;
    std::string what = "attach " + kind + " program '" + name + "'";
    auto fail = [&](int err) -> Napi::Error { return MakeBpfError(env, what, err, capture.Take()); };
    auto from_link = [&](struct bpf_link* link, const std::string& link_kind) -> Napi::Value {
      int err = libbpf_get_error(link);
      if (err) throw fail(err);
      return NewLink(env, LibbpfAttachment(link, link_kind));
    };

    if (kind == "auto") {
      return from_link(bpf_program__attach(prog), "auto");
    }
    if (kind == "tracepoint") {
      return from_link(bpf_program__attach_tracepoint(prog, OptString(spec, "category").c_str(),
                                                      OptString(spec, "name").c_str()),
                       kind);
    }
    if (kind == "raw_tracepoint") {
      return from_link(bpf_program__attach_raw_tracepoint(prog, OptString(spec, "name").c_str()), kind);
    }
    if (kind == "tracing") {
      return from_link(bpf_program__attach_trace(prog), kind);
    }
    if (kind == "kprobe") {
      DECLARE_LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = static_cast<size_t>(OptInt(spec, "offset", 0)),
                          .retprobe = OptBool(spec, "retprobe"));
      return from_link(bpf_program__attach_kprobe_opts(prog, OptString(spec, "function").c_str(), &opts), kind);
    }
    if (kind == "uprobe") {
      std::string function = OptString(spec, "function");
      DECLARE_LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = OptBool(spec, "retprobe"));
      if (!function.empty()) opts.func_name = function.c_str();
      std::string binary = OptString(spec, "binary");
      return from_link(bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(OptInt(spec, "pid", -1)),
                                                       binary.c_str(),
                                                       static_cast<size_t>(OptInt(spec, "offset", 0)), &opts),
                       kind);
    }
    if (kind == "cgroup") {
      std::string path = OptString(spec, "path");
      int cgroup_fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cgroup_fd < 0) throw fail(-errno);
      struct bpf_link* link = bpf_program__attach_cgroup(prog, cgroup_fd);
      close(cgroup_fd);
      return from_link(link, kind);
    }
    if (kind == "xdp") {
      int ifindex = static_cast<int>(OptInt(spec, "ifindex", 0));
      uint32_t mode_flags = static_cast<uint32_t>(OptInt(spec, "flags", 0));
      if (!OptBool(spec, "netlink")) {
        // A BPF link dies with its last fd, so a killed process leaves nothing attached.
        DECLARE_LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = mode_flags);
        int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
        if (fd >= 0) return NewLink(env, FdAttachment(fd, "xdp"));
        int err = -errno;
        if (err != -EINVAL || OptBool(spec, "linkOnly")) throw fail(err);
      }
      int own = fcntl(prog_fd, F_DUPFD_CLOEXEC, 3);
      if (own < 0) throw fail(-errno);
      int err = bpf_xdp_attach(ifindex, prog_fd, mode_flags | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
      if (err) {
        close(own);
        throw fail(err);
      }
      return NewLink(env, XdpNetlinkAttachment(ifindex, mode_flags, own));
    }
    if (kind == "tc") {
      int ifindex = static_cast<int>(OptInt(spec, "ifindex", 0));
      bool ingress = OptString(spec, "direction") != "egress";
      std::string mechanism = OptString(spec, "mechanism");
      if (mechanism != "clsact") {
        int fd = bpf_link_create(prog_fd, ifindex,
                                 static_cast<enum bpf_attach_type>(ingress ? kAttachTcxIngress : kAttachTcxEgress),
                                 nullptr);
        if (fd >= 0) return NewLink(env, FdAttachment(fd, "tcx"));
        int err = -errno;
        // Kernels before 6.6 do not know the tcx attach types and answer EINVAL.
        if (mechanism == "tcx" || err != -EINVAL) throw fail(err);
      }
      int err = AcquireClsact(ifindex);
      if (err) throw fail(err);
      DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                          .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
      DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd,
                          .handle = static_cast<__u32>(OptInt(spec, "handle", 0)),
                          .priority = static_cast<__u32>(OptInt(spec, "priority", 0)));
      err = bpf_tc_attach(&hook, &opts);
      if (err) {
        ReleaseClsact(ifindex);
        throw fail(err);
      }
      return NewLink(env, TcAttachment(ifindex, ingress, opts.handle, opts.priority));
    }
    if (kind == "socket") {
      int socket_fd = static_cast<int>(OptInt(spec, "fd", -1));
      int own = fcntl(socket_fd, F_DUPFD_CLOEXEC, 3);
      if (own < 0) throw fail(-errno);
      if (setsockopt(own, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd, sizeof(prog_fd)) != 0) {
        int err = -errno;
        close(own);
        throw fail(err);
      }
      return NewLink(env, SocketFilterAttachment(own));
    }
    throw Napi::Error::New(env, "unknown attach kind '" + kind + "'");
  }

  // .bss/.data maps are mmap()ed here after load (libbpf 1.1 does so only for skeletons):
  // globals read and written there go straight to the kernel's copy, without a syscall
  // and without rewriting their neighbours.
  uint8_t* Mapped(Napi::Env env, const std::string& name, size_t offset, size_t length, bool write) {
    struct bpf_map* map = Map(env, name);
    if (write && name.size() >= 7 && name.compare(name.size() - 7, 7, ".rodata") == 0)
      throw Napi::Error::New(env, "map '" + name + "' is read-only once loaded");
    int fd = bpf_map__fd(map);
    if (fd < 0) throw Napi::Error::New(env, "map '" + name + "' is not loaded");
    if (!(bpf_map__map_flags(map) & BPF_F_MMAPABLE)) throw Napi::Error::New(env, "map '" + name + "' is not mmapable");
    size_t size = static_cast<size_t>(bpf_map__value_size(map));
    if (offset + length > size) throw Napi::RangeError::New(env, "access past the end of map '" + name + "'");
    auto it = mappings_.find(name);
    if (it == mappings_.end()) {
      size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      size_t bytes = (size + page - 1) / page * page;
      bool rodata = name.size() >= 7 && name.compare(name.size() - 7, 7, ".rodata") == 0;
      void* at = mmap(nullptr, bytes, rodata ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (at == MAP_FAILED) throw MakeBpfError(env, "mmap map '" + name + "'", errno, "");
      it = mappings_.emplace(name, std::make_pair(static_cast<uint8_t*>(at), bytes)).first;
    }
    return it->second.first + offset;
  }

  // readMapped(map, offset, length) -> Buffer
  Napi::Value ReadMapped(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t offset = info[1].As<Napi::Number>().Uint32Value(), length = info[2].As<Napi::Number>().Uint32Value();
    uint8_t* at = Mapped(env, info[0].As<Napi::String>(), offset, length, false);
    return Napi::Buffer<uint8_t>::Copy(env, at, length);
  }

  // writeMapped(map, offset, bytes)
  Napi::Value WriteMapped(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes bytes = BytesArg(info[2], "bytes");
    uint8_t* at = Mapped(env, info[0].As<Napi::String>(), info[1].As<Napi::Number>().Uint32Value(), bytes.length, true);
    memcpy(at, bytes.data, bytes.length);
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseObject();
    return info.Env().Undefined();
  }

  struct bpf_object* obj_ = nullptr;
  std::vector<uint8_t> image_;
  std::map<std::string, std::pair<uint8_t*, size_t>> mappings_;
};

}  // namespace

void InitObject(Napi::Env env, Napi::Object exports) { BpfObject::Init(env, exports); }

}  // namespace tcpscope
