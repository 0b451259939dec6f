// Attachments. bpf_link based ones (tracepoints, cgroup, XDP, TCX) vanish with their fd; TC filters
// made with bpf_tc_attach are netlink objects that outlive the process, so they are tracked here and
// removed explicitly, together with the clsact qdisc when (and only when) we created it.
#include "common.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

namespace fcl {

namespace {

// One entry per (netns, ifindex) on which we hold TC filters. The qdisc is destroyed when the last
// of our filters goes, if this process created it; a pre-existing clsact is never touched.
struct QdiscRef {
  bool created = false;
  int refs = 0;
};
using QdiscKey = std::tuple<uint64_t, uint64_t, int>;
std::mutex g_qdiscMu;
std::map<QdiscKey, QdiscRef> g_qdiscs;

bool Gone(int err) { return err == ENOENT || err == ENODEV || err == ENXIO; }

const char* PointName(bpf_tc_attach_point p) { return p == BPF_TC_EGRESS ? "egress" : "ingress"; }

// Releases one reference; destroys the qdisc if it was ours and unused. Must run inside the netns.
void ReleaseQdisc(const QdiscKey& key, int ifindex) {
  bool destroy = false;
  {
    std::lock_guard<std::mutex> lock(g_qdiscMu);
    auto it = g_qdiscs.find(key);
    if (it == g_qdiscs.end()) return;
    if (--it->second.refs <= 0) {
      destroy = it->second.created;
      g_qdiscs.erase(it);
    }
  }
  if (!destroy) return;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  bpf_tc_hook_destroy(&hook);
}

}  // namespace

int LinkState::Detach() {
  if (detached) return 0;
  detached = true;
  if (kind == LinkKind::Tcx || kind == LinkKind::Xdp) {
    int rc = 0;
    if (linkFd >= 0 && close(linkFd) != 0) rc = -errno;
    linkFd = -1;
    return rc;
  }
  if (kind == LinkKind::BpfLink) {
    int rc = link ? bpf_link__destroy(link) : 0;
    link = nullptr;
    return rc < 0 && !Gone(-rc) ? rc : 0;
  }
  // Tc: back into the namespace the filter lives in. No BpfError here: detach also runs from the
  // environment cleanup hook and from signal handlers, where throwing is not possible.
  int origFd = -1;
  if (netnsFd >= 0) {
    origFd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (origFd < 0) return -errno;
    if (setns(netnsFd, CLONE_NEWNET) != 0) {
      int err = errno;
      close(origFd);
      return -err;
    }
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
  int rc = bpf_tc_detach(&hook, &opts);
  if (rc < 0 && Gone(-rc)) rc = 0;
  ReleaseQdisc({nsId.first, nsId.second, ifindex}, ifindex);
  if (origFd >= 0) {
    if (setns(origFd, CLONE_NEWNET) != 0) {
      fprintf(stderr, "bpf-loader: cannot return to the original network namespace: %s\n", strerror(errno));
      abort();
    }
    close(origFd);
  }
  if (netnsFd >= 0) close(netnsFd);
  netnsFd = -1;
  return rc;
}

std::shared_ptr<LinkState> AttachTc(Napi::Env env, int progFd, const std::string& ifname, int ifindex,
                                    bool egress, const std::string& netns, uint32_t priority,
                                    uint32_t handle) {
  auto st = std::make_shared<LinkState>();
  st->kind = LinkKind::Tc;
  st->point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
  if (!netns.empty()) st->netnsFd = OpenNetns(env, netns);
  // Close the held netns fd if anything below throws.
  struct FdCloser {
    std::shared_ptr<LinkState>& s;
    bool armed = true;
    ~FdCloser() {
      if (armed && s->netnsFd >= 0) close(s->netnsFd), s->netnsFd = -1;
    }
  } closer{st};
  st->nsId = NetnsId(st->netnsFd);
  std::string where = netns.empty() ? "" : ", netns=" + netns;

  NetnsGuard guard(env, st->netnsFd);
  if (!ifname.empty()) {
    ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) ThrowBpf(env, "if_nametoindex(" + ifname + where + ")", errno ? errno : ENODEV);
  }
  st->ifindex = ifindex;
  std::string dev = "ifindex=" + std::to_string(ifindex) + (ifname.empty() ? "" : " " + ifname) + where;

  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int rc = bpf_tc_hook_create(&hook);
  if (rc < 0 && rc != -EEXIST) ThrowBpf(env, "bpf_tc_hook_create(" + dev + ")", -rc);
  QdiscKey key{st->nsId.first, st->nsId.second, ifindex};
  {
    std::lock_guard<std::mutex> lock(g_qdiscMu);
    auto& ref = g_qdiscs[key];
    if (ref.refs == 0) ref.created = rc == 0;
    ref.refs++;
  }

  hook.attach_point = st->point;
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd, .handle = handle, .priority = priority);
  rc = bpf_tc_attach(&hook, &opts);
  if (rc < 0) {
    ReleaseQdisc(key, ifindex);
    ThrowBpf(env, std::string("bpf_tc_attach(") + dev + ", " + PointName(st->point) + ")", -rc);
  }
  st->handle = opts.handle;
  st->priority = opts.priority;
  st->desc = std::string("tc(") + dev + ", " + PointName(st->point) + ")";
  closer.armed = false;
  return st;
}

// libbpf 1.1 (Debian bookworm) predates TCX: the attach types come from the kernel's uapi (6.6).
constexpr int kTcxIngress = 46, kTcxEgress = 47;

std::shared_ptr<LinkState> AttachTcx(Napi::Env env, int progFd, const std::string& ifname, int ifindex,
                                     bool egress, const std::string& netns, int* errOut) {
  auto st = std::make_shared<LinkState>();
  st->kind = LinkKind::Tcx;
  st->point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
  int nsFd = netns.empty() ? -1 : OpenNetns(env, netns);
  std::string where = netns.empty() ? "" : ", netns=" + netns;
  int fd = -1, err = 0;
  try {
    // The link is an fd: once created it no longer depends on our thread's namespace.
    NetnsGuard guard(env, nsFd);
    if (!ifname.empty()) {
      ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
      if (ifindex == 0) ThrowBpf(env, "if_nametoindex(" + ifname + where + ")", errno ? errno : ENODEV);
    }
    fd = bpf_link_create(progFd, ifindex, static_cast<bpf_attach_type>(egress ? kTcxEgress : kTcxIngress), nullptr);
    if (fd < 0) err = -fd;
  } catch (...) {
    if (nsFd >= 0) close(nsFd);
    throw;
  }
  if (nsFd >= 0) close(nsFd);
  std::string dev = "ifindex=" + std::to_string(ifindex) + (ifname.empty() ? "" : " " + ifname) + where;
  if (fd < 0) {
    if (errOut && err == EINVAL) {
      *errOut = err;
      return nullptr;
    }
    ThrowBpf(env, std::string("bpf_link_create(tcx, ") + dev + ", " + PointName(st->point) + ")", err);
  }
  st->linkFd = fd;
  st->ifindex = ifindex;
  st->desc = std::string("tcx(") + dev + ", " + PointName(st->point) + ")";
  return st;
}

void Link::Init(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = DefineClass(env, "Link",
                                    {InstanceMethod("detach", &Link::Detach),
                                     InstanceMethod("info", &Link::Info),
                                     InstanceAccessor("detached", &Link::GetDetached, nullptr),
                                     InstanceAccessor("description", &Link::GetDescription, nullptr)});
  data->linkCtor = Napi::Persistent(ctor);
  exports.Set("Link", ctor);
}

Link::Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {}

Napi::Object Link::Wrap(Napi::Env env, std::shared_ptr<LinkState> st) {
  Napi::Object o = Data(env)->linkCtor.New({});
  Link::Unwrap(o)->st_ = std::move(st);
  return o;
}

Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!st_ || st_->detached) return env.Undefined();
  if (auto owner = st_->owner.lock()) owner->links.erase(st_);
  int rc = st_->Detach();
  if (rc < 0) ThrowBpf(env, "detach " + st_->desc, -rc);
  return env.Undefined();
}

Napi::Value Link::GetDetached(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !st_ || st_->detached);
}

Napi::Value Link::GetDescription(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), st_ ? st_->desc : "");
}

Napi::Value Link::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!st_) return o;
  o.Set("kind", st_->kind == LinkKind::Tc    ? "tc"
               : st_->kind == LinkKind::Tcx ? "tcx"
               : st_->kind == LinkKind::Xdp ? "xdp"
                                            : "bpf_link");
  o.Set("description", st_->desc);
  if (st_->kind == LinkKind::Xdp) {
    o.Set("ifindex", st_->ifindex);
    o.Set("xdpMode", st_->xdpNative ? "native" : "generic");
    o.Set("fd", st_->linkFd);
  } else if (st_->kind == LinkKind::Tcx) {
    o.Set("ifindex", st_->ifindex);
    o.Set("direction", PointName(st_->point));
    o.Set("fd", st_->linkFd);
  } else if (st_->kind == LinkKind::Tc) {
    o.Set("ifindex", st_->ifindex);
    o.Set("direction", PointName(st_->point));
    o.Set("handle", st_->handle);
    o.Set("priority", st_->priority);
  } else if (st_->link) {
    o.Set("fd", bpf_link__fd(st_->link));
  }
  return o;
}

}  // namespace fcl
