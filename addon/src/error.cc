// BpfError construction and libbpf's print callback.
#include "common.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fcl {

std::string ErrnoName(int err) {
  // Kernel-internal, but what the bpf syscall answers for an operation a map type lacks.
  if (err == 524) return "ENOTSUPP";
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

Napi::Error MakeBpfError(Napi::Env env, const std::string& op, int err, const std::string& log) {
  std::string code = ErrnoName(err);
  std::string message = op + ": " + code;
  AddonData* d = Data(env);
  Napi::Object e;
  if (d && !d->errorClass.IsEmpty()) {
    e = d->errorClass.New({Napi::String::New(env, message), Napi::String::New(env, op),
                           Napi::Number::New(env, err), Napi::String::New(env, code)});
  } else {
    e = Napi::Error::New(env, message).Value();
    e.Set("op", op);
    e.Set("errno", err);
    e.Set("code", code);
  }
  if (!log.empty()) e.Set("log", log);
  return Napi::Error(env, e);
}

void ThrowBpf(Napi::Env env, const std::string& op, int err, const std::string& log) {
  throw MakeBpfError(env, op, err, log);
}

// libbpf calls print synchronously from inside our own calls, always on the JS thread that made
// them, so the current env is known there.
static thread_local napi_env g_printEnv = nullptr;
static thread_local std::string* g_capture = nullptr;

void BeginLogCapture() {
  delete g_capture;
  g_capture = new std::string();
}

std::string EndLogCapture() {
  std::string out = g_capture ? std::move(*g_capture) : std::string();
  delete g_capture;
  g_capture = nullptr;
  return out;
}

void SetPrintEnv(napi_env env) { g_printEnv = env; }

static int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  char stackBuf[1024];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(stackBuf, sizeof stackBuf, fmt, copy);
  va_end(copy);
  std::string msg;
  if (n < 0) return 0;
  if (static_cast<size_t>(n) < sizeof stackBuf) {
    msg.assign(stackBuf, n);
  } else {
    msg.resize(n + 1);
    vsnprintf(msg.data(), n + 1, fmt, args);
    msg.resize(n);
  }
  if (g_capture) g_capture->append(msg);

  AddonData* d = g_printEnv ? Data(Napi::Env(g_printEnv)) : nullptr;
  if (d && !d->logger.IsEmpty() && !d->tearingDown) {
    Napi::Env env(g_printEnv);
    Napi::HandleScope scope(env);
    const char* lv = level == LIBBPF_WARN ? "warn" : level == LIBBPF_INFO ? "info" : "debug";
    std::string trimmed = msg;
    while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
    try {
      d->logger.Call({Napi::String::New(env, lv), Napi::String::New(env, trimmed)});
    } catch (const Napi::Error&) {
      // A throwing logger must not turn a libbpf diagnostic into a failed operation.
    }
    return 0;
  }
  if (level == LIBBPF_WARN && getenv("FLOWCTL_DEBUG")) fputs(("libbpf: " + msg).c_str(), stderr);
  return 0;
}

void InstallPrintCallback() { libbpf_set_print(Print); }

}  // namespace fcl
