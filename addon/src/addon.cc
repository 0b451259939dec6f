// Module entry: per-environment data, the cleanup hook, and the module-level functions.
#include "common.h"

namespace fcl {

AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

static size_t CloseAll(AddonData* d) {
  size_t n = d->objects.size();
  // Move out first: closing can re-enter through JS finalizers.
  auto objects = std::move(d->objects);
  d->objects.clear();
  for (auto& o : objects) o->Close();
  return n;
}

// Worker termination and normal exit: nothing we attached outlives the environment. (process.exit
// and signals skip this hook in Node; lib/cleanup.ts covers them.)
static void CleanupHook(void* arg) {
  auto* d = static_cast<AddonData*>(arg);
  d->tearingDown = true;
  CloseAll(d);
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Data(info.Env())->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Value SetLogger(const Napi::CallbackInfo& info) {
  AddonData* d = Data(info.Env());
  if (info.Length() > 0 && info[0].IsFunction()) {
    d->logger = Napi::Persistent(info[0].As<Napi::Function>());
    SetPrintEnv(info.Env());
  } else {
    d->logger.Reset();
  }
  return info.Env().Undefined();
}

static Napi::Value CloseAllJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(CloseAll(Data(info.Env()))));
}

static Napi::Value OpenObjects(const Napi::CallbackInfo& info) {
  AddonData* d = Data(info.Env());
  size_t links = 0;
  for (auto& o : d->objects) links += o->links.size();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("objects", static_cast<double>(d->objects.size()));
  out.Set("links", static_cast<double>(links));
  return out;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* d = new AddonData();
  d->env = env;
  env.SetInstanceData<AddonData>(d);
  napi_add_env_cleanup_hook(env, CleanupHook, d);
  InstallPrintCallback();
  SetPrintEnv(env);
  Object::Init(env, exports, d);
  Program::Init(env, exports, d);
  Map::Init(env, exports, d);
  Link::Init(env, exports, d);
  RingBuffer::Init(env, exports, d);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("setLogger", Napi::Function::New(env, SetLogger));
  exports.Set("closeAll", Napi::Function::New(env, CloseAllJs));
  exports.Set("openObjects", Napi::Function::New(env, OpenObjects));
  exports.Set("probeFeatures", Napi::Function::New(env, ProbeFeatures));
  exports.Set("probeProgType", Napi::Function::New(env, ProbeProgType));
  exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType));
  exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper));
  return exports;
}

}  // namespace fcl

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return fcl::Init(env, exports); }

NODE_API_MODULE(bpf_loader, InitModule)
