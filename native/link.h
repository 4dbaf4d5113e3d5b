// SPDX-License-Identifier: MIT
// A Link is one attachment of a program. Every kind detaches the same way from JS
// (detach(), dispose, or finalization), whatever kernel mechanism holds it.
#pragma once

#include <napi.h>
#include <memory>
#include <string>

struct bpf_link;

namespace tcpscope {

class Attachment {
 public:
  virtual ~Attachment() = default;
  // Returns 0 or a negative errno.
  virtual int Detach() = 0;
  virtual int Fd() const { return -1; }
  virtual int Pin(const std::string& path) { (void)path; return -95; /* -EOPNOTSUPP */ }
  virtual std::string Kind() const = 0;
  // Where the attachment lives, for attachments that outlive the process (legacy tc,
  // netlink XDP): what `tcpscope cleanup` needs to remove them after a SIGKILL.
  virtual void Describe(Napi::Object out) const { (void)out; }
};

// Removes a clsact filter or a netlink XDP program left by a process that died.
int DetachTcFilter(int ifindex, bool ingress, uint32_t handle, uint32_t priority);
int DetachXdp(int ifindex, uint32_t flags, uint32_t expected_prog_id);

std::unique_ptr<Attachment> LibbpfAttachment(struct bpf_link* link, std::string kind);
std::unique_ptr<Attachment> FdAttachment(int fd, std::string kind);
std::unique_ptr<Attachment> TcAttachment(int ifindex, bool ingress, uint32_t handle,
                                         uint32_t priority);
// Both take ownership of the fd they are given: a dup made for the attachment, so that
// detaching never acts through an fd number the caller has closed and reused.
std::unique_ptr<Attachment> XdpNetlinkAttachment(int ifindex, uint32_t flags, int prog_fd);
std::unique_ptr<Attachment> SocketFilterAttachment(int socket_fd);

// Creates the JS Link object that owns `attachment`.
Napi::Object NewLink(Napi::Env env, std::unique_ptr<Attachment> attachment);

// tc clsact hooks are shared by every filter on an interface: count our users per
// interface (network namespace + ifindex, of the calling thread) so the qdisc we created
// is removed only when our last filter goes. Thread-safe: workers load the addon too.
int AcquireClsact(int ifindex);
void ReleaseClsact(int ifindex);

}  // namespace tcpscope
