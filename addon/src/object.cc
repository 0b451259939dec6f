// BpfObject: open, configure (global variables, autoload, map sizes), load, and close with
// everything it owns.
#include "common.h"

#include <bpf/btf.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace fcl {

void ObjState::Close() {
  for (auto& r : rings) r->Close();
  rings.clear();
  for (auto& l : links) l->Detach();
  links.clear();
  if (obj) bpf_object__close(obj);
  obj = nullptr;
}

void Object::Init(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = DefineClass(
      env, "BpfObject",
      {InstanceMethod("setVariable", &Object::SetVariable),
       InstanceMethod("variables", &Object::Variables),
       InstanceMethod("setAutoload", &Object::SetAutoload),
       InstanceMethod("setMaxEntries", &Object::SetMaxEntries),
       InstanceMethod("load", &Object::Load),
       InstanceMethod("program", &Object::Program),
       InstanceMethod("map", &Object::Map),
       InstanceMethod("programNames", &Object::ProgramNames),
       InstanceMethod("mapNames", &Object::MapNames),
       InstanceMethod("ringBuffer", &Object::RingBuffer),
       InstanceMethod("close", &Object::Close),
       InstanceAccessor("name", &Object::GetName, nullptr),
       InstanceAccessor("loaded", &Object::GetLoaded, nullptr),
       InstanceAccessor("closed", &Object::GetClosed, nullptr)});
  data->objectCtor = Napi::Persistent(ctor);
  exports.Set("BpfObject", ctor);
}

// new BpfObject(pathOrBuffer, name?)
Object::Object(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Object>(info) {
  Napi::Env env = info.Env();
  st_ = std::make_shared<ObjState>();
  std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.empty() ? nullptr : name.c_str());
  std::string op;
  if (info.Length() > 0 && info[0].IsBuffer()) {
    auto buf = info[0].As<Napi::Buffer<char>>();
    st_->image.assign(buf.Data(), buf.Data() + buf.Length());
    op = "bpf_object__open_mem(" + std::to_string(buf.Length()) + " bytes)";
    st_->obj = bpf_object__open_mem(st_->image.data(), st_->image.size(), &opts);
  } else if (info.Length() > 0 && info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    op = "bpf_object__open_file(" + path + ")";
    st_->obj = bpf_object__open_file(path.c_str(), &opts);
  } else {
    throw Napi::TypeError::New(env, "BpfObject.open: expected a file path or a Buffer");
  }
  if (!st_->obj) ThrowBpf(env, op, errno ? errno : EINVAL);
  st_->name = bpf_object__name(st_->obj);
  Data(env)->objects.insert(st_);
}

ObjState& Object::Open(Napi::Env env) {
  if (st_->closed()) ThrowBpf(env, "object '" + st_->name + "' is closed", EBADF);
  return *st_;
}

namespace {

struct VarRef {
  bpf_map* map;
  std::string section;
  uint32_t offset, size;
};

// Global variables live in internal maps named "<obj prefix>.<section>"; their layout is in the
// BTF datasec of that section.
template <typename Fn>
void ForEachVariable(bpf_object* obj, Fn fn) {
  const btf* b = bpf_object__btf(obj);
  if (!b) return;
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (!bpf_map__is_internal(map)) continue;
    std::string mname = bpf_map__name(map);
    auto dot = mname.find('.');
    if (dot == std::string::npos) continue;
    std::string sec = mname.substr(dot);
    int id = btf__find_by_name_kind(b, sec.c_str(), BTF_KIND_DATASEC);
    if (id < 0) continue;
    const btf_type* t = btf__type_by_id(b, id);
    const btf_var_secinfo* vs = btf_var_secinfos(t);
    for (int i = 0; i < btf_vlen(t); i++, vs++) {
      const btf_type* var = btf__type_by_id(b, vs->type);
      if (!var || !btf_is_var(var)) continue;
      fn(std::string(btf__name_by_offset(b, var->name_off)), VarRef{map, sec, vs->offset, vs->size});
    }
  }
}

}  // namespace

// setVariable(name, value: Buffer | number | bigint | boolean)
Napi::Value Object::SetVariable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string op = "setVariable('" + name + "')";
  if (st.loaded) ThrowBpf(env, op + " after load", EBUSY);
  bool found = false;
  VarRef ref{};
  ForEachVariable(st.obj, [&](const std::string& n, const VarRef& r) {
    if (!found && n == name) found = true, ref = r;
  });
  if (!found) ThrowBpf(env, op + " in " + st.name + ": no such global variable", ENOENT);

  std::vector<uint8_t> bytes(ref.size);
  Napi::Value v = info[1];
  if (v.IsBuffer()) {
    auto buf = v.As<Napi::Buffer<uint8_t>>();
    if (buf.Length() != ref.size)
      throw Napi::RangeError::New(env, op + ": value is " + std::to_string(buf.Length()) + " bytes, variable is " +
                                           std::to_string(ref.size));
    memcpy(bytes.data(), buf.Data(), ref.size);
  } else if (v.IsNumber() || v.IsBigInt() || v.IsBoolean()) {
    if (ref.size != 1 && ref.size != 2 && ref.size != 4 && ref.size != 8)
      throw Napi::TypeError::New(env, op + ": variable of " + std::to_string(ref.size) + " bytes needs a Buffer");
    uint64_t u;
    if (v.IsBigInt()) {
      bool lossless;
      u = v.As<Napi::BigInt>().Uint64Value(&lossless);
    } else if (v.IsBoolean()) {
      u = v.As<Napi::Boolean>().Value() ? 1 : 0;
    } else {
      double d = v.As<Napi::Number>().DoubleValue();
      if (d != static_cast<double>(static_cast<int64_t>(d)))
        throw Napi::RangeError::New(env, op + ": " + std::to_string(d) + " is not an integer");
      u = static_cast<uint64_t>(static_cast<int64_t>(d));
    }
    if (ref.size < 8) {
      uint64_t hi = u >> (ref.size * 8);
      uint64_t signExt = ~0ULL >> (ref.size * 8);
      // Accept both unsigned values and negative values of signed variables.
      if (hi != 0 && hi != signExt)
        throw Napi::RangeError::New(env, op + ": value does not fit in " + std::to_string(ref.size) + " bytes");
    }
    memcpy(bytes.data(), &u, ref.size);  // little-endian host, as is the BPF target we compile for
  } else {
    throw Napi::TypeError::New(env, op + ": expected Buffer, number, bigint or boolean");
  }

  size_t size = 0;
  const void* init = bpf_map__initial_value(ref.map, &size);
  if (!init || ref.offset + ref.size > size) ThrowBpf(env, op, EINVAL);
  std::vector<uint8_t> image(static_cast<const uint8_t*>(init), static_cast<const uint8_t*>(init) + size);
  memcpy(image.data() + ref.offset, bytes.data(), ref.size);
  Check(env, bpf_map__set_initial_value(ref.map, image.data(), size), op);
  return env.Undefined();
}

Napi::Value Object::Variables(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  ForEachVariable(st.obj, [&](const std::string& n, const VarRef& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", n);
    o.Set("section", r.section);
    o.Set("offset", r.offset);
    o.Set("size", r.size);
    out.Set(i++, o);
  });
  return out;
}

Napi::Value Object::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_program* p = bpf_object__find_program_by_name(st.obj, name.c_str());
  if (!p) ThrowBpf(env, "setAutoload: program '" + name + "' in " + st.name, ENOENT);
  Check(env, bpf_program__set_autoload(p, info[1].ToBoolean().Value()), "bpf_program__set_autoload(" + name + ")");
  return env.Undefined();
}

Napi::Value Object::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_map* m = bpf_object__find_map_by_name(st.obj, name.c_str());
  if (!m) ThrowBpf(env, "setMaxEntries: map '" + name + "' in " + st.name, ENOENT);
  uint32_t n = info[1].As<Napi::Number>().Uint32Value();
  Check(env, bpf_map__set_max_entries(m, n), "bpf_map__set_max_entries(" + name + ", " + std::to_string(n) + ")");
  return env.Undefined();
}

Napi::Value Object::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  if (st.loaded) return env.Undefined();
  BeginLogCapture();
  int rc = bpf_object__load(st.obj);
  std::string captured = EndLogCapture();
  if (rc < 0) {
    // libbpf prints the verifier log between these markers; keep only that part when present.
    std::string log = captured;
    auto b = captured.find("-- BEGIN PROG LOAD LOG --");
    auto e = captured.find("-- END PROG LOAD LOG --");
    if (b != std::string::npos && e != std::string::npos && e > b) {
      b = captured.find('\n', b);
      log = captured.substr(b + 1, e - b - 1);
    }
    ThrowBpf(env, "bpf_object__load(" + st.name + ")", -rc, log);
  }
  st.loaded = true;
  st.image.clear();
  st.image.shrink_to_fit();
  return env.Undefined();
}

Napi::Value Object::Program(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_program* p = bpf_object__find_program_by_name(st.obj, name.c_str());
  if (!p) ThrowBpf(env, "program '" + name + "' in " + st.name, ENOENT);
  return Program::Wrap(env, st_, p);
}

Napi::Value Object::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_map* m = bpf_object__find_map_by_name(st.obj, name.c_str());
  if (!m) ThrowBpf(env, "map '" + name + "' in " + st.name, ENOENT);
  return Map::Wrap(env, st_, m);
}

Napi::Value Object::ProgramNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_program* p;
  bpf_object__for_each_program(p, st.obj) out.Set(i++, bpf_program__name(p));
  return out;
}

Napi::Value Object::MapNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, st.obj) out.Set(i++, bpf_map__name(m));
  return out;
}

// ringBuffer(mapName, callback, maxBatchBytes?)
Napi::Value Object::RingBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = Open(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!st.loaded) ThrowBpf(env, "ringBuffer('" + name + "') before load", EINVAL);
  bpf_map* m = bpf_object__find_map_by_name(st.obj, name.c_str());
  if (!m) ThrowBpf(env, "ringBuffer: map '" + name + "' in " + st.name, ENOENT);
  if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) ThrowBpf(env, "ringBuffer('" + name + "'): not a ringbuf map", EINVAL);
  size_t maxBatch = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : (4 << 20);
  return RingBuffer::Create(env, st_, m, info[1].As<Napi::Function>(), maxBatch);
}

Napi::Value Object::Close(const Napi::CallbackInfo& info) {
  Data(info.Env())->objects.erase(st_);
  st_->Close();
  return info.Env().Undefined();
}

Napi::Value Object::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), st_->name); }
Napi::Value Object::GetLoaded(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), st_->loaded && !st_->closed());
}
Napi::Value Object::GetClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), st_->closed()); }

}  // namespace fcl
