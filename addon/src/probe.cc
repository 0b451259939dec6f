// Feature probes: what this kernel and this process may do, so callers can fail early with a
// reason (or tests can skip loudly) instead of failing deep inside a load.
#include "common.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace fcl {

static int ProgTypeByName(const std::string& name) {
  for (int t = 0; t < 256; t++) {
    const char* s = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(t));
    if (!s) break;
    if (name == s) return t;
  }
  return -1;
}

static int MapTypeByName(const std::string& name) {
  for (int t = 0; t < 256; t++) {
    const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(t));
    if (!s) break;
    if (name == s) return t;
  }
  return -1;
}

static uint64_t EffectiveCaps() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

Napi::Value ProbeFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  // Privilege is what the kernel says, not what the uid suggests: create a one-entry array map.
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fcl_probe", 4, 4, 1, nullptr);
  int privErr = fd < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  o.Set("privileged", privErr == 0);
  if (privErr) o.Set("privilegeError", MakeBpfError(env, "bpf_map_create(probe)", privErr).Message());
  struct stat st{};
  o.Set("btf", stat("/sys/kernel/btf/vmlinux", &st) == 0);
  uint64_t caps = EffectiveCaps();
  Napi::Object c = Napi::Object::New(env);
  c.Set("sysAdmin", (caps >> 21 & 1) != 0);
  c.Set("netAdmin", (caps >> 12 & 1) != 0);
  c.Set("perfmon", (caps >> 38 & 1) != 0);
  c.Set("bpf", (caps >> 39 & 1) != 0);
  o.Set("capabilities", c);
  auto prog = [&](bpf_prog_type t) { return privErr == 0 && libbpf_probe_bpf_prog_type(t, nullptr) == 1; };
  auto map = [&](bpf_map_type t) { return privErr == 0 && libbpf_probe_bpf_map_type(t, nullptr) == 1; };
  auto helper = [&](bpf_prog_type t, bpf_func_id h) {
    return privErr == 0 && libbpf_probe_bpf_helper(t, h, nullptr) == 1;
  };
  o.Set("ringbuf", map(BPF_MAP_TYPE_RINGBUF));
  o.Set("lpmTrie", map(BPF_MAP_TYPE_LPM_TRIE));
  o.Set("lruHash", map(BPF_MAP_TYPE_LRU_HASH));
  o.Set("tc", prog(BPF_PROG_TYPE_SCHED_CLS));
  o.Set("xdp", prog(BPF_PROG_TYPE_XDP));
  o.Set("tracepoint", prog(BPF_PROG_TYPE_TRACEPOINT));
  o.Set("rawTracepoint", prog(BPF_PROG_TYPE_RAW_TRACEPOINT));
  o.Set("cgroupSkb", prog(BPF_PROG_TYPE_CGROUP_SKB));
  o.Set("cgroupSock", prog(BPF_PROG_TYPE_CGROUP_SOCK));
  o.Set("cgroupSockAddr", prog(BPF_PROG_TYPE_CGROUP_SOCK_ADDR));
  Napi::Object h = Napi::Object::New(env);
  h.Set("ringbuf_reserve", helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_ringbuf_reserve));
  h.Set("skb_load_bytes", helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_skb_load_bytes));
  h.Set("ktime_get_ns", helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_ktime_get_ns));
  h.Set("get_socket_cookie", helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_get_socket_cookie));
  h.Set("loop", helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_loop));
  o.Set("helpers", h);
  struct utsname u{};
  uname(&u);
  o.Set("kernel", std::string(u.release));
  o.Set("libbpf", std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
  return o;
}

// probeProgType(name) / probeMapType(name) / probeHelper(progType, helperId): true, false, or a
// BpfError for an unknown type name.
Napi::Value ProbeProgType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string n = info[0].As<Napi::String>().Utf8Value();
  int t = ProgTypeByName(n);
  if (t < 0) ThrowBpf(env, "probeProgType('" + n + "'): unknown program type", EINVAL);
  int rc = libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(t), nullptr);
  if (rc < 0) ThrowBpf(env, "libbpf_probe_bpf_prog_type(" + n + ")", -rc);
  return Napi::Boolean::New(env, rc == 1);
}

Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string n = info[0].As<Napi::String>().Utf8Value();
  int t = MapTypeByName(n);
  if (t < 0) ThrowBpf(env, "probeMapType('" + n + "'): unknown map type", EINVAL);
  int rc = libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(t), nullptr);
  if (rc < 0) ThrowBpf(env, "libbpf_probe_bpf_map_type(" + n + ")", -rc);
  return Napi::Boolean::New(env, rc == 1);
}

Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string n = info[0].As<Napi::String>().Utf8Value();
  int t = ProgTypeByName(n);
  if (t < 0) ThrowBpf(env, "probeHelper('" + n + "'): unknown program type", EINVAL);
  uint32_t id = info[1].As<Napi::Number>().Uint32Value();
  int rc = libbpf_probe_bpf_helper(static_cast<bpf_prog_type>(t), static_cast<bpf_func_id>(id), nullptr);
  if (rc < 0) ThrowBpf(env, "libbpf_probe_bpf_helper(" + n + ", " + std::to_string(id) + ")", -rc);
  return Napi::Boolean::New(env, rc == 1);
}

}  // namespace fcl
