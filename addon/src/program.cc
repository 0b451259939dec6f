// BpfProgram: attach points and BPF_PROG_TEST_RUN.
#include "common.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace fcl {

void Program::Init(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = DefineClass(
      env, "BpfProgram",
      {InstanceMethod("attachTc", &Program::AttachTc),
       InstanceMethod("attachTracepoint", &Program::AttachTracepoint),
       InstanceMethod("attachRawTracepoint", &Program::AttachRawTracepoint),
       InstanceMethod("attachCgroup", &Program::AttachCgroup),
       InstanceMethod("attachXdp", &Program::AttachXdp),
       InstanceMethod("testRun", &Program::TestRun),
       InstanceMethod("pin", &Program::Pin),
       InstanceMethod("unpin", &Program::Unpin),
       InstanceAccessor("name", &Program::GetName, nullptr),
       InstanceAccessor("fd", &Program::GetFd, nullptr),
       InstanceAccessor("type", &Program::GetType, nullptr),
       InstanceAccessor("section", &Program::GetSection, nullptr)});
  data->programCtor = Napi::Persistent(ctor);
  exports.Set("BpfProgram", ctor);
}

Program::Program(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Program>(info) {}

Napi::Object Program::Wrap(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_program* prog) {
  Napi::Object o = Data(env)->programCtor.New({});
  Program* p = Program::Unwrap(o);
  p->obj_ = std::move(obj);
  p->prog_ = prog;
  return o;
}

bpf_program* Program::Prog(Napi::Env env, bool needLoaded) {
  if (!obj_ || obj_->closed()) ThrowBpf(env, "program: object is closed", EBADF);
  if (needLoaded && bpf_program__fd(prog_) < 0)
    ThrowBpf(env, std::string("program '") + bpf_program__name(prog_) + "' is not loaded", EBADF);
  return prog_;
}

Napi::Value Program::Link(Napi::Env env, bpf_link* link, const std::string& op, const std::string& desc) {
  if (!link) ThrowBpf(env, op, errno ? errno : EINVAL);
  auto st = std::make_shared<LinkState>();
  st->link = link;
  st->desc = desc;
  st->owner = obj_;
  obj_->links.insert(st);
  return Link::Wrap(env, st);
}

// attachTc({ ifname?, ifindex?, direction, netns?, priority?, handle?, mode? })
// mode: 'auto' (TCX where the kernel has it, else clsact), 'tcx' or 'clsact'.
Napi::Value Program::AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  Napi::Object o = info[0].As<Napi::Object>();
  std::string ifname = o.Has("ifname") && o.Get("ifname").IsString() ? o.Get("ifname").As<Napi::String>().Utf8Value() : "";
  int ifindex = o.Has("ifindex") && o.Get("ifindex").IsNumber() ? o.Get("ifindex").As<Napi::Number>().Int32Value() : 0;
  if (ifname.empty() && ifindex <= 0) throw Napi::TypeError::New(env, "attachTc: ifname or ifindex is required");
  std::string dir = o.Has("direction") ? o.Get("direction").ToString().Utf8Value() : "";
  if (dir != "ingress" && dir != "egress")
    throw Napi::TypeError::New(env, "attachTc: direction must be 'ingress' or 'egress', got '" + dir + "'");
  std::string netns = o.Has("netns") && o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  uint32_t prio = o.Has("priority") && o.Get("priority").IsNumber() ? o.Get("priority").As<Napi::Number>().Uint32Value() : 0;
  uint32_t handle = o.Has("handle") && o.Get("handle").IsNumber() ? o.Get("handle").As<Napi::Number>().Uint32Value() : 0;
  std::string mode = o.Has("mode") && o.Get("mode").IsString() ? o.Get("mode").As<Napi::String>().Utf8Value() : "auto";
  if (mode != "auto" && mode != "tcx" && mode != "clsact")
    throw Napi::TypeError::New(env, "attachTc: mode must be 'auto', 'tcx' or 'clsact', got '" + mode + "'");
  // A priority or handle only means something to a clsact filter.
  if (mode == "auto" && (prio || handle)) mode = "clsact";
  std::shared_ptr<LinkState> st;
  if (mode != "clsact") {
    int noTcx = 0;
    st = fcl::AttachTcx(env, bpf_program__fd(p), ifname, ifindex, dir == "egress", netns, mode == "auto" ? &noTcx : nullptr);
  }
  if (!st) st = fcl::AttachTc(env, bpf_program__fd(p), ifname, ifindex, dir == "egress", netns, prio, handle);
  st->desc = std::string(bpf_program__name(p)) + " " + st->desc;
  st->owner = obj_;
  obj_->links.insert(st);
  return Link::Wrap(env, st);
}

// libbpf resolves tracepoint ids through tracefs, which minimal hosts and containers often leave
// unmounted; mounting it is what `perf` and bpftrace do too.
static bool EnsureTracefs() {
  struct stat st{};
  if (stat("/sys/kernel/tracing/events", &st) == 0) return false;
  if (stat("/sys/kernel/debug/tracing/events", &st) == 0) return false;
  return mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0;
}

Napi::Value Program::AttachTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  std::string cat = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  bpf_link* l = bpf_program__attach_tracepoint(p, cat.c_str(), name.c_str());
  if (!l && errno == ENOENT && EnsureTracefs()) l = bpf_program__attach_tracepoint(p, cat.c_str(), name.c_str());
  std::string what = "tracepoint(" + cat + ":" + name + ")";
  return Link(env, l, "bpf_program__attach_tracepoint(" + cat + ":" + name + ")",
              std::string(bpf_program__name(p)) + " " + what);
}

Napi::Value Program::AttachRawTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_link* l = bpf_program__attach_raw_tracepoint(p, name.c_str());
  return Link(env, l, "bpf_program__attach_raw_tracepoint(" + name + ")",
              std::string(bpf_program__name(p)) + " raw_tracepoint(" + name + ")");
}

Napi::Value Program::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowBpf(env, "open cgroup(" + path + ")", errno);
  bpf_link* l = bpf_program__attach_cgroup(p, fd);
  int err = errno;
  close(fd);  // the link holds its own reference to the cgroup
  errno = err;
  return Link(env, l, "bpf_program__attach_cgroup(" + path + ")",
              std::string(bpf_program__name(p)) + " cgroup(" + path + ")");
}

// attachXdp(ifindex) or attachXdp({ ifname?, ifindex?, netns?, mode? })
// mode: 'auto' (native where the driver has it, else generic), 'native' or 'generic'. A bpf_link
// made with BPF_LINK_CREATE and explicit flags, so info() can say which mode it got.
Napi::Value Program::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  int ifindex = 0;
  std::string ifname, netns, mode = "auto";
  if (info[0].IsNumber()) {
    ifindex = info[0].As<Napi::Number>().Int32Value();
  } else {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("ifname").IsString()) ifname = o.Get("ifname").As<Napi::String>().Utf8Value();
    if (o.Get("ifindex").IsNumber()) ifindex = o.Get("ifindex").As<Napi::Number>().Int32Value();
    if (o.Get("netns").IsString()) netns = o.Get("netns").As<Napi::String>().Utf8Value();
    if (o.Get("mode").IsString()) mode = o.Get("mode").As<Napi::String>().Utf8Value();
  }
  if (mode != "auto" && mode != "native" && mode != "generic")
    throw Napi::TypeError::New(env, "attachXdp: mode must be 'auto', 'native' or 'generic', got '" + mode + "'");
  int nsFd = netns.empty() ? -1 : OpenNetns(env, netns);
  int fd = -1, err = 0;
  bool native = mode != "generic";
  std::string where = netns.empty() ? "" : ", netns=" + netns;
  try {
    // The link is an fd: once created it no longer depends on our thread's namespace.
    NetnsGuard guard(env, nsFd);
    if (!ifname.empty()) {
      ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
      if (ifindex == 0) ThrowBpf(env, "if_nametoindex(" + ifname + where + ")", errno ? errno : ENODEV);
    }
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    fd = bpf_link_create(bpf_program__fd(p), ifindex, BPF_XDP, &opts);
    // A driver without XDP support refuses native mode with EOPNOTSUPP.
    if (fd < 0 && mode == "auto" && fd == -EOPNOTSUPP) {
      native = false;
      opts.flags = XDP_FLAGS_SKB_MODE;
      fd = bpf_link_create(bpf_program__fd(p), ifindex, BPF_XDP, &opts);
    }
    if (fd < 0) err = -fd;
  } catch (...) {
    if (nsFd >= 0) close(nsFd);
    throw;
  }
  if (nsFd >= 0) close(nsFd);
  std::string dev = "ifindex=" + std::to_string(ifindex) + (ifname.empty() ? "" : " " + ifname) + where;
  if (fd < 0) ThrowBpf(env, std::string("bpf_link_create(xdp ") + (native ? "native" : "generic") + ", " + dev + ")", err);
  auto st = std::make_shared<LinkState>();
  st->kind = LinkKind::Xdp;
  st->linkFd = fd;
  st->ifindex = ifindex;
  st->xdpNative = native;
  st->desc = std::string(bpf_program__name(p)) + " xdp(" + dev + ", " + (native ? "native" : "generic") + ")";
  st->owner = obj_;
  obj_->links.insert(st);
  return Link::Wrap(env, st);
}

// testRun({ data?, ctx?, repeat?, dataOutSize?, ctxOutSize? })
Napi::Value Program::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  std::vector<uint8_t> dataIn, ctxIn;
  if (o.Get("data").IsBuffer()) {
    auto b = o.Get("data").As<Napi::Buffer<uint8_t>>();
    dataIn.assign(b.Data(), b.Data() + b.Length());
  }
  if (o.Get("ctx").IsBuffer()) {
    auto b = o.Get("ctx").As<Napi::Buffer<uint8_t>>();
    ctxIn.assign(b.Data(), b.Data() + b.Length());
  }
  uint32_t repeat = o.Get("repeat").IsNumber() ? o.Get("repeat").As<Napi::Number>().Uint32Value() : 0;
  // Programs may grow the packet (bpf_skb_change_tail, headroom); leave room beyond the input.
  size_t outSize = o.Get("dataOutSize").IsNumber() ? o.Get("dataOutSize").As<Napi::Number>().Uint32Value()
                                                    : (dataIn.empty() ? 0 : dataIn.size() + 512);
  size_t ctxOutSize = o.Get("ctxOutSize").IsNumber() ? o.Get("ctxOutSize").As<Napi::Number>().Uint32Value()
                                                      : ctxIn.size();
  std::vector<uint8_t> dataOut(outSize), ctxOut(ctxOutSize);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  if (!dataIn.empty()) {
    opts.data_in = dataIn.data();
    opts.data_size_in = dataIn.size();
  }
  if (outSize) {
    opts.data_out = dataOut.data();
    opts.data_size_out = outSize;
  }
  if (!ctxIn.empty()) {
    opts.ctx_in = ctxIn.data();
    opts.ctx_size_in = ctxIn.size();
  }
  if (ctxOutSize) {
    opts.ctx_out = ctxOut.data();
    opts.ctx_size_out = ctxOutSize;
  }
  opts.repeat = repeat;
  std::string op = std::string("bpf_prog_test_run_opts(") + bpf_program__name(p) +
                   (repeat > 1 ? ", repeat=" + std::to_string(repeat) : "") + ")";
  Check(env, bpf_prog_test_run_opts(bpf_program__fd(p), &opts), op);
  Napi::Object out = Napi::Object::New(env);
  out.Set("retval", Napi::Number::New(env, opts.retval));
  out.Set("durationNs", Napi::Number::New(env, opts.duration));
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, dataOut.data(), std::min<size_t>(opts.data_size_out, outSize)));
  if (ctxOutSize)
    out.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, ctxOut.data(), std::min<size_t>(opts.ctx_size_out, ctxOutSize)));
  return out;
}

Napi::Value Program::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Check(env, bpf_program__pin(p, path.c_str()), "bpf_program__pin(" + path + ")");
  return env.Undefined();
}

Napi::Value Program::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* p = Prog(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Check(env, bpf_program__unpin(p, path.c_str()), "bpf_program__unpin(" + path + ")");
  return env.Undefined();
}

Napi::Value Program::GetName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bpf_program__name(Prog(info.Env(), false)));
}
Napi::Value Program::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bpf_program__fd(Prog(info.Env(), false)));
}
Napi::Value Program::GetType(const Napi::CallbackInfo& info) {
  const char* s = libbpf_bpf_prog_type_str(bpf_program__type(Prog(info.Env(), false)));
  return Napi::String::New(info.Env(), s ? s : "unknown");
}
Napi::Value Program::GetSection(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bpf_program__section_name(Prog(info.Env(), false)));
}

}  // namespace fcl
