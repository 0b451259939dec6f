// Shared declarations of the bpf-loader addon: one ObjectWrap per libbpf concept (object, program,
// map, link, ring buffer). Kernel resources live in *State structs owned through shared_ptr so that
// a wrapper collected by GC never frees what its parent still tracks, and the parent's close()
// (or the environment cleanup hook) can tear everything down in the right order.
#pragma once

#include <napi.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <uv.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fcl {

struct ObjState;
struct LinkState;
struct RingState;

// Per-environment data: constructors, the JS error class and every open object (for cleanup).
struct AddonData {
  Napi::FunctionReference objectCtor, programCtor, mapCtor, linkCtor, ringCtor;
  Napi::FunctionReference errorClass;   // BpfError from lib/errors.ts
  Napi::FunctionReference logger;       // (level, message) => void, optional
  std::set<std::shared_ptr<ObjState>> objects;
  std::vector<std::shared_ptr<LinkState>> standaloneLinks;
  napi_env env = nullptr;
  bool tearingDown = false;
};

AddonData* Data(Napi::Env env);

// ---- errors (error.cc) ----
// Builds a BpfError; `err` is a positive errno. The message is `${op}: ${code}`.
Napi::Error MakeBpfError(Napi::Env env, const std::string& op, int err, const std::string& log = "");
[[noreturn]] void ThrowBpf(Napi::Env env, const std::string& op, int err, const std::string& log = "");
// libbpf returns -errno (libbpf 1.0 mode); throws when `ret < 0`.
inline int Check(Napi::Env env, int ret, const std::string& op) {
  if (ret < 0) ThrowBpf(env, op, -ret);
  return ret;
}
std::string ErrnoName(int err);
void InstallPrintCallback();
// While a capture is active, libbpf's messages are also appended here (the verifier log).
void BeginLogCapture();
std::string EndLogCapture();

// ---- network namespaces (netns.cc) ----
// Enters the netns at `path` (a name under /run/netns or a path) on this thread for the scope and
// always returns to the original one, also when the body throws.
class NetnsGuard {
 public:
  NetnsGuard(Napi::Env env, int targetFd);  // targetFd < 0: no switch
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  int origFd_ = -1;
};
// Opens a netns by name or path; returns an fd (caller closes). Throws BpfError.
int OpenNetns(Napi::Env env, const std::string& nameOrPath);
// Identity of a netns fd (st_dev, st_ino), or of the current one when fd < 0.
std::pair<uint64_t, uint64_t> NetnsId(int fd);

// ---- object ----
struct ObjState {
  bpf_object* obj = nullptr;
  std::string name;
  std::vector<char> image;   // open_mem keeps pointing into the ELF image until load
  bool loaded = false;
  std::set<std::shared_ptr<LinkState>> links;
  std::set<std::shared_ptr<RingState>> rings;
  void Close();
  bool closed() const { return obj == nullptr; }
};

// ---- links (link.cc) ----
enum class LinkKind { BpfLink, Tc, Tcx, Xdp };

struct LinkState {
  LinkKind kind = LinkKind::BpfLink;
  std::string desc;           // for error messages, e.g. "tc(ifindex=3, ingress)"
  bpf_link* link = nullptr;   // BpfLink
  int linkFd = -1;            // Tcx, Xdp: a kernel bpf_link made with BPF_LINK_CREATE
  bool xdpNative = false;     // Xdp: driver (native) mode rather than generic (skb) mode
  // Tc
  int netnsFd = -1;           // held so detach reaches the same namespace
  int ifindex = 0;
  bpf_tc_attach_point point = BPF_TC_INGRESS;
  uint32_t handle = 0, priority = 0;
  std::pair<uint64_t, uint64_t> nsId{0, 0};
  bool detached = false;
  std::weak_ptr<ObjState> owner;
  // Returns 0 or a negative errno; errors that mean "already gone" count as success.
  int Detach();
};

std::shared_ptr<LinkState> AttachTc(Napi::Env env, int progFd, const std::string& ifname, int ifindex,
                                    bool egress, const std::string& netns, uint32_t priority,
                                    uint32_t handle);
// TCX (kernel 6.6+): a bpf_link on the device, run before any clsact filter, gone with its fd.
// Returns nullptr with errno set when the kernel has no TCX (EINVAL) so callers can fall back.
std::shared_ptr<LinkState> AttachTcx(Napi::Env env, int progFd, const std::string& ifname, int ifindex,
                                     bool egress, const std::string& netns, int* errOut);

class Link : public Napi::ObjectWrap<Link> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<LinkState> st);
  explicit Link(const Napi::CallbackInfo& info);

 private:
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value GetDetached(const Napi::CallbackInfo& info);
  Napi::Value GetDescription(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  std::shared_ptr<LinkState> st_;
};

// ---- object wrapper (object.cc) ----
class Object : public Napi::ObjectWrap<Object> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data);
  explicit Object(const Napi::CallbackInfo& info);
  std::shared_ptr<ObjState> st_;

 private:
  ObjState& Open(Napi::Env env);
  Napi::Value SetVariable(const Napi::CallbackInfo& info);
  Napi::Value Variables(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value ProgramNames(const Napi::CallbackInfo& info);
  Napi::Value MapNames(const Napi::CallbackInfo& info);
  Napi::Value RingBuffer(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetLoaded(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
};

// ---- program (program.cc) ----
class Program : public Napi::ObjectWrap<Program> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_program* prog);
  explicit Program(const Napi::CallbackInfo& info);

 private:
  bpf_program* Prog(Napi::Env env, bool needLoaded = true);
  Napi::Value Link(Napi::Env env, bpf_link* link, const std::string& op, const std::string& desc);
  Napi::Value AttachTc(const Napi::CallbackInfo& info);
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetType(const Napi::CallbackInfo& info);
  Napi::Value GetSection(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  std::shared_ptr<ObjState> obj_;
  bpf_program* prog_ = nullptr;
};

// ---- map (map.cc) ----
class Map : public Napi::ObjectWrap<Map> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_map* map);
  explicit Map(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

 private:
  int Fd(Napi::Env env);
  size_t ValueSize(Napi::Env env);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value LookupAndDeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  std::shared_ptr<ObjState> obj_;
  bpf_map* map_ = nullptr;   // null for maps opened by pin path
  int ownFd_ = -1;           // fd for pinned maps opened standalone
  std::string name_;
};

// ---- ring buffer (ring_buffer.cc) ----
struct RingState {
  ring_buffer* rb = nullptr;
  uv_poll_t* poll = nullptr;  // freed in its close callback
  napi_env env = nullptr;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> asyncCtx;
  std::vector<uint8_t> batch;
  uint32_t batchCount = 0;
  size_t maxBatchBytes = 4 << 20;
  bool discarding = false;
  double consumed = 0, calls = 0, discarded = 0;
  bool paused = false, closed = false, delivering = false;
  std::weak_ptr<RingState> self;  // keeps the state alive while JS may close it mid-callback
  std::string mapName;
  void Close();
};

class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_map* map,
                             Napi::Function cb, size_t maxBatchBytes);
  explicit RingBuffer(const Napi::CallbackInfo& info);

 private:
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Discard(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  std::shared_ptr<RingState> st_;
};

// ---- probes (probe.cc) ----
Napi::Value ProbeFeatures(const Napi::CallbackInfo& info);
Napi::Value ProbeProgType(const Napi::CallbackInfo& info);
Napi::Value ProbeMapType(const Napi::CallbackInfo& info);
Napi::Value ProbeHelper(const Napi::CallbackInfo& info);
void SetPrintEnv(napi_env env);

}  // namespace fcl
