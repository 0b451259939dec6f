// Ring buffer consumption without threads: uv_poll on ring_buffer__epoll_fd() in the env's own
// loop; on readable, libbpf's consumer drains into one packed batch and JS is called once.
// Batch format (contracts.md): per record u32 len (LE), u32 reserved, len bytes, pad to 8.
#include "common.h"

#include <cerrno>
#include <cstring>

namespace fcl {

namespace {

// Returned by the sample callback to stop a drain once the batch is full; libbpf has already
// advanced the consumer position past that sample, so nothing is lost or seen twice. The rest
// stays in the ring and the level-triggered poll fires again on the next loop iteration.
constexpr int kBatchFull = -ECANCELED;

int OnSample(void* ctx, void* data, size_t len) {
  auto* st = static_cast<RingState*>(ctx);
  st->batchCount++;
  if (st->discarding) return 0;
  size_t off = st->batch.size();
  size_t rec = 8 + ((len + 7) & ~size_t(7));
  st->batch.resize(off + rec);
  uint8_t* p = st->batch.data() + off;
  uint32_t hdr[2] = {static_cast<uint32_t>(len), 0};
  memcpy(p, hdr, 8);
  memcpy(p + 8, data, len);
  if (rec - 8 > len) memset(p + 8 + len, 0, rec - 8 - len);
  return st->batch.size() >= st->maxBatchBytes ? kBatchFull : 0;
}

void Deliver(RingState* st) {
  if (st->closed || st->paused) return;
  Napi::Env env(st->env);
  Napi::HandleScope scope(env);
  st->batch.clear();
  st->batchCount = 0;
  int rc = ring_buffer__consume(st->rb);
  uint32_t count = st->batchCount;
  if (rc < 0 && rc != kBatchFull && count == 0) {
    napi_fatal_exception(env, MakeBpfError(env, "ring_buffer__consume(" + st->mapName + ")", -rc).Value());
    return;
  }
  if (count == 0) return;
  st->consumed += count;
  st->calls++;
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, st->batch.data(), st->batch.size());
  // Large one-off batches should not pin their peak size in the scratch buffer forever.
  if (st->batch.capacity() > 2 * st->maxBatchBytes) std::vector<uint8_t>().swap(st->batch);
  std::shared_ptr<RingState> keep = st->self.lock();
  Napi::Function fn = st->callback.Value();
  st->delivering = true;
  try {
    fn.MakeCallback(env.Global(), {buf, Napi::Number::New(env, count)}, *st->asyncCtx);
  } catch (const Napi::Error& e) {
    // Same path as an exception in any other event-loop callback: 'uncaughtException'.
    napi_fatal_exception(env, e.Value());
  }
  st->delivering = false;
  if (st->closed) st->asyncCtx.reset();
}

void OnReadable(uv_poll_t* handle, int status, int events) {
  auto* st = static_cast<RingState*>(handle->data);
  if (st) Deliver(st);
}

}  // namespace

void RingState::Close() {
  if (closed) return;
  closed = true;
  if (poll) {
    uv_poll_stop(poll);
    poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll = nullptr;
  }
  if (rb) ring_buffer__free(rb);
  rb = nullptr;
  callback.Reset();
  if (!delivering) asyncCtx.reset();
}

void RingBuffer::Init(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = DefineClass(env, "RingBuffer",
                                    {InstanceMethod("pause", &RingBuffer::Pause),
                                     InstanceMethod("resume", &RingBuffer::Resume),
                                     InstanceMethod("close", &RingBuffer::Close),
                                     InstanceMethod("discard", &RingBuffer::Discard),
                                     InstanceMethod("ref", &RingBuffer::Ref),
                                     InstanceMethod("unref", &RingBuffer::Unref),
                                     InstanceMethod("stats", &RingBuffer::Stats)});
  data->ringCtor = Napi::Persistent(ctor);
  exports.Set("RingBuffer", ctor);
}

RingBuffer::RingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBuffer>(info) {}

Napi::Object RingBuffer::Create(Napi::Env env, std::shared_ptr<ObjState> obj, bpf_map* map, Napi::Function cb,
                                size_t maxBatchBytes) {
  auto st = std::make_shared<RingState>();
  st->self = st;
  st->env = env;
  st->mapName = bpf_map__name(map);
  st->maxBatchBytes = maxBatchBytes < 4096 ? 4096 : maxBatchBytes;
  st->rb = ring_buffer__new(bpf_map__fd(map), OnSample, st.get(), nullptr);
  if (!st->rb) ThrowBpf(env, "ring_buffer__new(" + st->mapName + ")", errno);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    ring_buffer__free(st->rb);
    st->rb = nullptr;
    throw Napi::Error::New(env, "ringBuffer: no libuv loop for this environment");
  }
  st->poll = new uv_poll_t;
  int rc = uv_poll_init(loop, st->poll, ring_buffer__epoll_fd(st->rb));
  if (rc == 0) {
    st->poll->data = st.get();
    rc = uv_poll_start(st->poll, UV_READABLE, OnReadable);
  }
  if (rc != 0) {
    st->Close();
    ThrowBpf(env, "uv_poll_start(ring " + st->mapName + ")", -rc);
  }
  st->callback = Napi::Persistent(cb);
  st->asyncCtx = std::make_unique<Napi::AsyncContext>(env, ("bpf-loader:ringbuf:" + st->mapName).c_str());
  obj->rings.insert(st);
  Napi::Object o = Data(env)->ringCtor.New({});
  RingBuffer::Unwrap(o)->st_ = st;
  return o;
}

Napi::Value RingBuffer::Pause(const Napi::CallbackInfo& info) {
  if (st_ && !st_->closed && !st_->paused) {
    uv_poll_stop(st_->poll);
    st_->paused = true;
  }
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Resume(const Napi::CallbackInfo& info) {
  if (st_ && !st_->closed && st_->paused) {
    st_->paused = false;
    int rc = uv_poll_start(st_->poll, UV_READABLE, OnReadable);
    if (rc != 0) ThrowBpf(info.Env(), "uv_poll_start(ring " + st_->mapName + ")", -rc);
  }
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Close(const Napi::CallbackInfo& info) {
  if (st_) st_->Close();
  return info.Env().Undefined();
}

// Drains everything pending without calling JS (load shedding); returns the number dropped.
Napi::Value RingBuffer::Discard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!st_ || st_->closed) return Napi::Number::New(env, 0);
  st_->discarding = true;
  st_->batchCount = 0;
  int rc = ring_buffer__consume(st_->rb);
  st_->discarding = false;
  if (rc < 0) ThrowBpf(env, "ring_buffer__consume(" + st_->mapName + ")", -rc);
  st_->discarded += st_->batchCount;
  return Napi::Number::New(env, st_->batchCount);
}

Napi::Value RingBuffer::Ref(const Napi::CallbackInfo& info) {
  if (st_ && st_->poll) uv_ref(reinterpret_cast<uv_handle_t*>(st_->poll));
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Unref(const Napi::CallbackInfo& info) {
  if (st_ && st_->poll) uv_unref(reinterpret_cast<uv_handle_t*>(st_->poll));
  return info.Env().Undefined();
}

Napi::Value RingBuffer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("consumed", st_ ? st_->consumed : 0);
  o.Set("calls", st_ ? st_->calls : 0);
  o.Set("discarded", st_ ? st_->discarded : 0);
  o.Set("paused", st_ && st_->paused);
  o.Set("closed", !st_ || st_->closed);
  return o;
}

}  // namespace fcl
