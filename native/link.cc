// SPDX-License-Identifier: MIT
#include "link.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <utility>

#include "common.h"

#ifndef SO_DETACH_BPF
#define SO_DETACH_BPF 27
#endif

namespace tcpscope {

namespace {

// The network namespace of the calling thread (setns() is per thread), as its inode.
uint64_t CurrentNetns() {
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) != 0 && stat("/proc/self/ns/net", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

// An interface as the kernel knows it: ifindexes repeat across network namespaces.
using IfKey = std::pair<uint64_t, int>;

// An fd an attachment owns (a dup the caller made for it), closed exactly once.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int owned) : fd_(owned) {}
  ~OwnedFd() { Reset(); }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int Get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Netlink requests act in the calling thread's namespace: detaching from another one
// (a thread that has setns()ed since) first enters the namespace the attachment is in.
class NetnsHandle {
 public:
  NetnsHandle() : ino_(CurrentNetns()) {
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    fd_ = fd;
  }
  ~NetnsHandle() {
    if (fd_ >= 0) close(fd_);
  }
  NetnsHandle(const NetnsHandle&) = delete;
  NetnsHandle& operator=(const NetnsHandle&) = delete;
  uint64_t Ino() const { return ino_; }
  // Runs fn inside this namespace, returning to the thread's own afterwards.
  template <typename Fn>
  int Within(Fn fn) const {
    if (ino_ == 0 || CurrentNetns() == ino_ || fd_ < 0) return fn();
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    if (setns(fd_, CLONE_NEWNET) != 0) {
      int err = -errno;
      close(home);
      return err;
    }
    int result = fn();
    setns(home, CLONE_NEWNET);
    close(home);
    return result;
  }

 private:
  uint64_t ino_;
  int fd_ = -1;
};

class LibbpfLinkAttachment : public Attachment {
 public:
  LibbpfLinkAttachment(struct bpf_link* link, std::string kind) : link_(link), kind_(std::move(kind)) {}
  ~LibbpfLinkAttachment() override { Detach(); }
  int Detach() override {
    if (link_ == nullptr) return 0;
    int err = bpf_link__destroy(link_);
    link_ = nullptr;
    return err;
  }
  int Fd() const override { return link_ ? bpf_link__fd(link_) : -1; }
  int Pin(const std::string& path) override { return link_ ? bpf_link__pin(link_, path.c_str()) : -EBADF; }
  std::string Kind() const override { return kind_; }

 private:
  struct bpf_link* link_;
  std::string kind_;
};

class RawFdAttachment : public Attachment {
 public:
  RawFdAttachment(int fd, std::string kind) : fd_(fd), kind_(std::move(kind)) {}
  ~RawFdAttachment() override { Detach(); }
  int Detach() override {
    if (fd_ < 0) return 0;
    int err = close(fd_) == 0 ? 0 : -errno;
    fd_ = -1;
    return err;
  }
  int Fd() const override { return fd_; }
  int Pin(const std::string& path) override {
    return fd_ >= 0 ? (bpf_obj_pin(fd_, path.c_str()) == 0 ? 0 : -errno) : -EBADF;
  }
  std::string Kind() const override { return kind_; }

 private:
  int fd_;
  std::string kind_;
};

class ClsactFilterAttachment : public Attachment {
 public:
  ClsactFilterAttachment(int ifindex, bool ingress, uint32_t handle, uint32_t priority)
      : ifindex_(ifindex), ingress_(ingress), handle_(handle), priority_(priority) {}
  ~ClsactFilterAttachment() override { Detach(); }
  int Detach() override {
    if (detached_) return 0;
    detached_ = true;
    int err = netns_.Within([&] {
      DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_,
                          .attach_point = ingress_ ? BPF_TC_INGRESS : BPF_TC_EGRESS);
      DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle_, .priority = priority_);
      int e = bpf_tc_detach(&hook, &opts);
      ReleaseClsact(ifindex_);
      return e;
    });
    // The interface may be gone already (a deleted veth takes its filters with it).
    return err == -ENODEV || err == -ENOENT ? 0 : err;
  }
  std::string Kind() const override { return "tc"; }
  void Describe(Napi::Object out) const override {
    out.Set("ifindex", ifindex_);
    out.Set("direction", ingress_ ? "ingress" : "egress");
    out.Set("handle", handle_);
    out.Set("priority", priority_);
  }

 private:
  int ifindex_;
  bool ingress_;
  uint32_t handle_;
  uint32_t priority_;
  NetnsHandle netns_;
  bool detached_ = false;
};

class XdpNetlink : public Attachment {
 public:
  // Detaching replaces only our program (XDP_FLAGS_REPLACE with its fd): our own dup, as
  // the object's fd is closed with the object and its number may then be reused.
  XdpNetlink(int ifindex, uint32_t flags, int prog_fd) : ifindex_(ifindex), flags_(flags), prog_fd_(prog_fd) {}
  ~XdpNetlink() override { Detach(); }
  int Detach() override {
    if (detached_) return 0;
    detached_ = true;
    int err = netns_.Within([&] {
      DECLARE_LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd_.Get());
      return bpf_xdp_detach(ifindex_, flags_ | XDP_FLAGS_REPLACE, &opts);
    });
    prog_fd_.Reset();
    return err == -ENODEV ? 0 : err;
  }
  std::string Kind() const override { return "xdp"; }
  void Describe(Napi::Object out) const override {
    out.Set("ifindex", ifindex_);
    out.Set("flags", flags_);
    out.Set("netlink", true);
  }

 private:
  int ifindex_;
  uint32_t flags_;
  OwnedFd prog_fd_;
  NetnsHandle netns_;
  bool detached_ = false;
};

// Detaches through its own dup of the socket: the caller's fd number may be closed and
// reused for another socket meanwhile. The dup keeps the socket open until detach.
class SocketFilter : public Attachment {
 public:
  explicit SocketFilter(int socket_fd) : socket_(socket_fd) {}
  ~SocketFilter() override { Detach(); }
  int Detach() override {
    if (socket_.Get() < 0) return 0;
    int unused = 0;
    int err = setsockopt(socket_.Get(), SOL_SOCKET, SO_DETACH_BPF, &unused, sizeof(unused)) == 0 ? 0 : -errno;
    socket_.Reset();
    // A socket whose filter is already gone (detached elsewhere) has nothing to detach.
    return err == -ENOENT ? 0 : err;
  }
  std::string Kind() const override { return "socket_filter"; }

 private:
  OwnedFd socket_;
};

struct ClsactUse {
  int users = 0;
  bool created = false;
};
// Shared by every thread that loads the addon (Node workers); keyed by namespace and ifindex.
std::mutex clsact_mutex;
std::map<IfKey, ClsactUse>& ClsactUses() {
  static std::map<IfKey, ClsactUse> uses;
  return uses;
}

// One constructor per Node environment (main thread and each worker): a process-wide
// static reference would be overwritten and freed by another thread's environment.
struct AddonData {
  Napi::FunctionReference link_constructor;
};

class Link : public Napi::ObjectWrap<Link> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "NativeLink",
                                    {InstanceMethod("detach", &Link::DetachJs),
                                     InstanceMethod("pin", &Link::PinJs),
                                     InstanceMethod("describe", &Link::DescribeJs),
                                     InstanceAccessor("fd", &Link::FdJs, nullptr),
                                     InstanceAccessor("kind", &Link::KindJs, nullptr),
                                     InstanceAccessor("attached", &Link::AttachedJs, nullptr)});
    auto* data = new AddonData();
    data->link_constructor = Napi::Persistent(fn);
    env.SetInstanceData<AddonData>(data);
    exports.Set("NativeLink", fn);
  }

  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {}

  void Adopt(std::unique_ptr<Attachment> attachment) {
    kind_ = attachment->Kind();
    attachment_ = std::move(attachment);
  }

 private:
  Napi::Value DetachJs(const Napi::CallbackInfo& info) {
    if (!attachment_) return info.Env().Undefined();
    LogCapture capture;
    int err = attachment_->Detach();
    attachment_.reset();
    if (err < 0) throw MakeBpfError(info.Env(), "detach " + kind_, err, capture.Take());
    return info.Env().Undefined();
  }
  Napi::Value PinJs(const Napi::CallbackInfo& info) {
    if (!attachment_) throw Napi::Error::New(info.Env(), "link is detached");
    std::string path = info[0].As<Napi::String>();
    LogCapture capture;
    int err = attachment_->Pin(path);
    if (err < 0) throw MakeBpfError(info.Env(), "pin link " + kind_ + " at " + path, err, capture.Take());
    return info.Env().Undefined();
  }
  Napi::Value DescribeJs(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("kind", kind_);
    if (attachment_) attachment_->Describe(out);
    return out;
  }
  Napi::Value FdJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), attachment_ ? attachment_->Fd() : -1);
  }
  Napi::Value KindJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kind_); }
  Napi::Value AttachedJs(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), attachment_ != nullptr);
  }

  std::unique_ptr<Attachment> attachment_;
  std::string kind_;
};

}  // namespace

int AcquireClsact(int ifindex) {
  std::lock_guard<std::mutex> lock(clsact_mutex);
  IfKey key(CurrentNetns(), ifindex);
  ClsactUse& use = ClsactUses()[key];
  if (use.users == 0) {
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    int err = bpf_tc_hook_create(&hook);
    if (err < 0 && err != -EEXIST) {
      ClsactUses().erase(key);
      return err;
    }
    use.created = err == 0;
  }
  use.users++;
  return 0;
}

void ReleaseClsact(int ifindex) {
  std::lock_guard<std::mutex> lock(clsact_mutex);
  auto it = ClsactUses().find(IfKey(CurrentNetns(), ifindex));
  if (it == ClsactUses().end()) return;
  if (--it->second.users > 0) return;
  if (it->second.created) {
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                        .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&hook);
  }
  ClsactUses().erase(it);
}

int DetachTcFilter(int ifindex, bool ingress, uint32_t handle, uint32_t priority) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
  return bpf_tc_detach(&hook, &opts);
}

int DetachXdp(int ifindex, uint32_t flags, uint32_t expected_prog_id) {
  __u32 current = 0;
  int err = bpf_xdp_query_id(ifindex, static_cast<int>(flags), &current);
  if (err) return err;
  if (current == 0 || (expected_prog_id != 0 && current != expected_prog_id)) return -ENOENT;
  return bpf_xdp_detach(ifindex, flags, nullptr);
}

namespace {
Napi::Value DetachTcFilterJs(const Napi::CallbackInfo& info) {
  int err = DetachTcFilter(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Boolean>().Value(),
                           info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), err);
}
Napi::Value DetachXdpJs(const Napi::CallbackInfo& info) {
  int err = DetachXdp(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(),
                      info[2].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), err);
}
}  // namespace

std::unique_ptr<Attachment> LibbpfAttachment(struct bpf_link* link, std::string kind) {
  return std::make_unique<LibbpfLinkAttachment>(link, std::move(kind));
}
std::unique_ptr<Attachment> FdAttachment(int fd, std::string kind) {
  return std::make_unique<RawFdAttachment>(fd, std::move(kind));
}
std::unique_ptr<Attachment> TcAttachment(int ifindex, bool ingress, uint32_t handle, uint32_t priority) {
  return std::make_unique<ClsactFilterAttachment>(ifindex, ingress, handle, priority);
}
std::unique_ptr<Attachment> XdpNetlinkAttachment(int ifindex, uint32_t flags, int prog_fd) {
  return std::make_unique<XdpNetlink>(ifindex, flags, prog_fd);
}
std::unique_ptr<Attachment> SocketFilterAttachment(int socket_fd) {
  return std::make_unique<SocketFilter>(socket_fd);
}

Napi::Object NewLink(Napi::Env env, std::unique_ptr<Attachment> attachment) {
  Napi::Object object = env.GetInstanceData<AddonData>()->link_constructor.New({});
  Link::Unwrap(object)->Adopt(std::move(attachment));
  return object;
}

void InitLink(Napi::Env env, Napi::Object exports) {
  Link::Init(env, exports);
  exports.Set("detachTcFilter", Napi::Function::New(env, DetachTcFilterJs));
  exports.Set("detachXdp", Napi::Function::New(env, DetachXdpJs));
}

}  // namespace tcpscope
