// BpfMap: element CRUD on the map fd, key iteration, batch drain, metadata and pinning.
#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fcl {

static bool IsPerCpu(bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

void Map::Init(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = DefineClass(env, "BpfMap",
                                    {InstanceMethod("lookup", &Map::Lookup),
                                     InstanceMethod("update", &Map::Update),
                                     InstanceMethod("delete", &Map::Delete),
                                     InstanceMethod("keys", &Map::Keys),
                                     InstanceMethod("lookupAndDeleteBatch", &Map::LookupAndDeleteBatch),
                                     InstanceMethod("updateBatch", &Map::UpdateBatch),
                                     InstanceMethod("deleteBatch", &Map::DeleteBatch),
                                     InstanceMethod("lookupBatch", &Map::LookupBatch),
                                     InstanceMethod("info", &Map::Info),
                                     InstanceMethod("pin", &Map::Pin),
                                     InstanceMethod("unpin", &Map::Unpin),
                                     InstanceAccessor("name", &Map::GetName, nullptr),
                                     InstanceAccessor("fd", &Map::GetFd, nullptr)});
  data->mapCtor = Napi::Persistent(ctor);
  exports.Set("BpfMap", ctor);
}

// new BpfMap() is only made from C++, except `new BpfMap(pinPath)` which opens a pinned map.
Map::Map(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Map>(info) {
  if (info.Length() > 0 && info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    ownFd_ = bpf_obj_get(path.c_str());
    if (ownFd_ < 0) ThrowBpf(info.Env(), "bpf_obj_get(" + path + ")", errno);
    name_ = path;
  }
}

void Map::Finalize(Napi::Env env) {
  if (ownFd_ >= 0) close(ownFd_);
  ownFd_ = -1;
}

Napi::Object Map::Wrap(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_map* map) {
  Napi::Object o = Data(env)->mapCtor.New({});
  Map* m = Map::Unwrap(o);
  m->obj_ = std::move(obj);
  m->map_ = map;
  m->name_ = bpf_map__name(map);
  return o;
}

int Map::Fd(Napi::Env env) {
  if (ownFd_ >= 0) return ownFd_;
  if (!obj_ || obj_->closed()) ThrowBpf(env, "map '" + name_ + "': object is closed", EBADF);
  int fd = bpf_map__fd(map_);
  if (fd < 0) ThrowBpf(env, "map '" + name_ + "' is not loaded", EBADF);
  return fd;
}

static bpf_map_info InfoOf(Napi::Env env, int fd, const std::string& name) {
  bpf_map_info mi{};
  uint32_t len = sizeof mi;
  Check(env, bpf_obj_get_info_by_fd(fd, &mi, &len), "bpf_obj_get_info_by_fd(map " + name + ")");
  return mi;
}

size_t Map::ValueSize(Napi::Env env) {
  bpf_map_type t;
  size_t vs;
  if (map_) {
    t = bpf_map__type(map_);
    vs = bpf_map__value_size(map_);
  } else {
    bpf_map_info mi = InfoOf(env, Fd(env), name_);
    t = static_cast<bpf_map_type>(mi.type);
    vs = mi.value_size;
  }
  if (IsPerCpu(t)) return ((vs + 7) & ~size_t(7)) * libbpf_num_possible_cpus();
  return vs;
}

static size_t KeySize(Napi::Env env, bpf_map* map, int fd, const std::string& name) {
  if (map) return bpf_map__key_size(map);
  return InfoOf(env, fd, name).key_size;
}

static const uint8_t* Bytes(Napi::Env env, const Napi::Value& v, size_t want, const std::string& what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(env, what + ": expected a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() != want)
    throw Napi::RangeError::New(env, what + " is " + std::to_string(b.Length()) + " bytes, expected " + std::to_string(want));
  return b.Data();
}

Napi::Value Map::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  const uint8_t* key = Bytes(env, info[0], KeySize(env, map_, fd, name_), "map '" + name_ + "' key");
  uint64_t flags = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 0;
  size_t vs = ValueSize(env);
  auto out = Napi::Buffer<uint8_t>::New(env, vs);
  if (bpf_map_lookup_elem_flags(fd, key, out.Data(), flags) != 0) {
    if (errno == ENOENT) return env.Undefined();
    ThrowBpf(env, "bpf_map_lookup_elem(" + name_ + ")", errno);
  }
  return out;
}

Napi::Value Map::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  const uint8_t* key = Bytes(env, info[0], KeySize(env, map_, fd, name_), "map '" + name_ + "' key");
  const uint8_t* val = Bytes(env, info[1], ValueSize(env), "map '" + name_ + "' value");
  uint64_t flags = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(fd, key, val, flags) != 0)
    ThrowBpf(env, "bpf_map_update_elem(" + name_ + ", flags=" + std::to_string(flags) + ")", errno);
  return env.Undefined();
}

Napi::Value Map::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  const uint8_t* key = Bytes(env, info[0], KeySize(env, map_, fd, name_), "map '" + name_ + "' key");
  if (bpf_map_delete_elem(fd, key) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowBpf(env, "bpf_map_delete_elem(" + name_ + ")", errno);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value Map::Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t ks = KeySize(env, map_, fd, name_);
  std::vector<uint8_t> cur(ks), next(ks);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, next.data(), ks));
    cur.swap(next);
    prev = cur.data();
  }
  if (errno != ENOENT) ThrowBpf(env, "bpf_map_get_next_key(" + name_ + ")", errno);
  return out;
}

// Drains the whole map with BPF_MAP_LOOKUP_AND_DELETE_BATCH (hash maps, kernel 5.6+). Returns
// { keys, values }. Arrays do not support deletion, so the kernel answers EINVAL/ENOTSUPP there.
Napi::Value Map::LookupAndDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t ks = KeySize(env, map_, fd, name_), vs = ValueSize(env);
  uint32_t chunk = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 256;
  if (chunk == 0) chunk = 256;
  std::vector<uint8_t> keys(ks * chunk), vals(vs * chunk);
  std::vector<uint8_t> inTok(std::max<size_t>(ks, 8)), outTok(std::max<size_t>(ks, 8));
  Napi::Array ka = Napi::Array::New(env), va = Napi::Array::New(env);
  uint32_t n = 0;
  bool first = true;
  for (;;) {
    uint32_t count = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : inTok.data(), outTok.data(), keys.data(),
                                             vals.data(), &count, &opts);
    int err = rc < 0 ? errno : 0;
    if (rc < 0 && err != ENOENT) ThrowBpf(env, "bpf_map_lookup_and_delete_batch(" + name_ + ")", err);
    for (uint32_t i = 0; i < count; i++) {
      ka.Set(n, Napi::Buffer<uint8_t>::Copy(env, keys.data() + i * ks, ks));
      va.Set(n, Napi::Buffer<uint8_t>::Copy(env, vals.data() + i * vs, vs));
      n++;
    }
    if (err == ENOENT) break;
    inTok.swap(outTok);
    first = false;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", ka);
  out.Set("values", va);
  return out;
}

// Elements per batch syscall: bounds the time the kernel spends in one call (it reschedules between
// elements, but a signal is only seen between calls).
static constexpr uint32_t kBatchChunk = 65536;

// A BpfError that also says how many elements were done before the failure (`done`, `total`), so
// a caller knows how far a partial batch got. The message says it too.
[[noreturn]] static void ThrowBatch(Napi::Env env, const std::string& op, int err, uint32_t done, uint32_t total) {
  Napi::Error e = MakeBpfError(env, op + " after " + std::to_string(done) + " of " + std::to_string(total), err);
  e.Value().Set("done", Napi::Number::New(env, done));
  e.Value().Set("total", Napi::Number::New(env, total));
  throw e;
}

// Packed keys (n * keySize bytes) as one Buffer: what the batch calls take, without a JS object
// or a syscall per element.
static const uint8_t* Packed(Napi::Env env, const Napi::Value& v, size_t size, const std::string& what, uint32_t* n) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(env, what + ": expected a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() % size != 0)
    throw Napi::RangeError::New(env, what + " is " + std::to_string(b.Length()) + " bytes, not a multiple of " + std::to_string(size));
  *n = b.Length() / size;
  return b.Data();
}

// On failure the kernel reports how far a batch got only once it has started on the elements; an
// error before that (bad flags, no batch support for the map type, no write access) leaves the
// count as asked. A failing element is never counted, so "all of them" with an error means none.
static uint32_t Progress(int rc, uint32_t count, uint32_t asked) { return rc < 0 && count >= asked ? 0 : std::min(count, asked); }

// updateBatch(keys, values): BPF_MAP_UPDATE_BATCH (kernel 5.6+) over packed keys and values, in
// chunks. Returns the number written; on failure throws naming how many were written. No flags:
// the kernel takes none per batch but BPF_F_LOCK (noexist/exist are EINVAL).
Napi::Value Map::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t ks = KeySize(env, map_, fd, name_), vs = ValueSize(env);
  uint32_t nk, nv;
  const uint8_t* keys = Packed(env, info[0], ks, "map '" + name_ + "' keys", &nk);
  const uint8_t* vals = Packed(env, info[1], vs, "map '" + name_ + "' values", &nv);
  if (nk != nv) throw Napi::RangeError::New(env, "map '" + name_ + "': " + std::to_string(nk) + " keys but " + std::to_string(nv) + " values");
  uint32_t done = 0;
  while (done < nk) {
    uint32_t asked = std::min<uint32_t>(nk - done, kBatchChunk), count = asked;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_update_batch(fd, keys + size_t(done) * ks, vals + size_t(done) * vs, &count, &opts);
    int err = rc < 0 ? errno : 0;  // before anything else can touch errno
    count = Progress(rc, count, asked);
    done += count;
    if (rc < 0) ThrowBatch(env, "bpf_map_update_batch(" + name_ + ")", err, done, nk);
    // Success always consumes the whole chunk; a kernel that says otherwise must not spin us forever.
    if (count == 0) ThrowBatch(env, "bpf_map_update_batch(" + name_ + ") made no progress", EIO, done, nk);
  }
  return Napi::Number::New(env, done);
}

// deleteBatch(keys): BPF_MAP_DELETE_BATCH over packed keys. Keys not in the map are skipped (the
// kernel stops at the first with ENOENT; the rest are retried past it). Returns how many were deleted.
Napi::Value Map::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t ks = KeySize(env, map_, fd, name_);
  uint32_t nk;
  const uint8_t* keys = Packed(env, info[0], ks, "map '" + name_ + "' keys", &nk);
  uint32_t done = 0, deleted = 0;
  while (done < nk) {
    uint32_t asked = std::min<uint32_t>(nk - done, kBatchChunk), count = asked;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_delete_batch(fd, keys + size_t(done) * ks, &count, &opts);
    int err = rc < 0 ? errno : 0;
    count = Progress(rc, count, asked);
    done += count;
    deleted += count;
    if (rc < 0 && err == ENOENT && done < nk) {
      done++;  // the key at `done` was not there: step over it
      continue;
    }
    if (rc < 0) ThrowBatch(env, "bpf_map_delete_batch(" + name_ + ")", err, deleted, nk);
    if (count == 0) ThrowBatch(env, "bpf_map_delete_batch(" + name_ + ") made no progress", EIO, deleted, nk);
  }
  return Napi::Number::New(env, deleted);
}

// lookupBatch(chunk?): the whole map with BPF_MAP_LOOKUP_BATCH (hash and array kinds, kernel 5.6+)
// as { keys, values, count }: keys and values packed back to back in two Buffers, one syscall per
// `chunk` elements instead of one get_next_key and one lookup per element. Not a snapshot: rows
// changed meanwhile may or may not be seen, as with get_next_key.
Napi::Value Map::LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t ks = KeySize(env, map_, fd, name_), vs = ValueSize(env);
  uint32_t chunk = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
  if (chunk == 0) chunk = 8192;
  std::vector<uint8_t> keys, vals;
  std::vector<uint8_t> inTok(std::max<size_t>(ks, 8)), outTok(std::max<size_t>(ks, 8));
  size_t n = 0;
  bool first = true;
  for (;;) {
    keys.resize((n + chunk) * ks);
    vals.resize((n + chunk) * vs);
    uint32_t count = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : inTok.data(), outTok.data(), keys.data() + n * ks,
                                  vals.data() + n * vs, &count, &opts);
    int err = rc < 0 ? errno : 0;
    // ENOSPC: one hash bucket holds more elements than fit in `chunk`; retry the same position bigger.
    if (err == ENOSPC && count == 0) {
      chunk *= 2;
      continue;
    }
    if (rc < 0 && err != ENOENT) ThrowBpf(env, "bpf_map_lookup_batch(" + name_ + ")", err);
    n += std::min(count, chunk);
    if (err == ENOENT) break;
    inTok.swap(outTok);
    first = false;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), n * ks));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, vals.data(), n * vs));
  out.Set("count", Napi::Number::New(env, static_cast<double>(n)));
  return out;
}

Napi::Value Map::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  bpf_map_type t;
  uint32_t ks, vs, max, flags, id = 0;
  std::string name = name_;
  if (map_ && (!obj_ || obj_->closed())) ThrowBpf(env, "map '" + name_ + "': object is closed", EBADF);
  if (map_ && bpf_map__fd(map_) < 0) {
    t = bpf_map__type(map_);
    ks = bpf_map__key_size(map_);
    vs = bpf_map__value_size(map_);
    max = bpf_map__max_entries(map_);
    flags = bpf_map__map_flags(map_);
  } else {
    bpf_map_info mi = InfoOf(env, Fd(env), name_);
    t = static_cast<bpf_map_type>(mi.type);
    ks = mi.key_size;
    vs = mi.value_size;
    max = mi.max_entries;
    flags = mi.map_flags;
    id = mi.id;
    if (!map_) name = mi.name;
  }
  const char* ts = libbpf_bpf_map_type_str(t);
  o.Set("name", name);
  o.Set("type", ts ? ts : "unknown");
  o.Set("typeId", static_cast<uint32_t>(t));
  o.Set("keySize", ks);
  o.Set("valueSize", vs);
  o.Set("maxEntries", max);
  o.Set("flags", flags);
  o.Set("id", id);
  o.Set("perCpu", IsPerCpu(t));
  o.Set("valueBufferSize", static_cast<double>(IsPerCpu(t) ? ((vs + 7) & ~7u) * libbpf_num_possible_cpus() : vs));
  return o;
}

Napi::Value Map::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (map_) {
    Fd(env);
    Check(env, bpf_map__pin(map_, path.c_str()), "bpf_map__pin(" + name_ + ", " + path + ")");
  } else if (bpf_obj_pin(Fd(env), path.c_str()) != 0) {
    ThrowBpf(env, "bpf_obj_pin(" + path + ")", errno);
  }
  return env.Undefined();
}

Napi::Value Map::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (map_) {
    Fd(env);
    Check(env, bpf_map__unpin(map_, path.empty() ? nullptr : path.c_str()), "bpf_map__unpin(" + name_ + ")");
  } else if (unlink(path.c_str()) != 0) {
    ThrowBpf(env, "unlink(" + path + ")", errno);
  }
  return env.Undefined();
}

Napi::Value Map::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
Napi::Value Map::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), Fd(info.Env())); }

}  // namespace fcl
