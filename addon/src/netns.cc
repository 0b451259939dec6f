// Entering another network namespace around an attach. setns(CLONE_NEWNET) only affects the
// calling thread, and it is allowed in a multi-threaded process (unlike CLONE_NEWNS/NEWUSER).
#include "common.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fcl {

int OpenNetns(Napi::Env env, const std::string& nameOrPath) {
  std::string path = nameOrPath.find('/') == std::string::npos ? "/run/netns/" + nameOrPath : nameOrPath;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowBpf(env, "open netns(" + path + ")", errno);
  return fd;
}

std::pair<uint64_t, uint64_t> NetnsId(int fd) {
  struct stat st{};
  int rc = fd >= 0 ? fstat(fd, &st) : stat("/proc/thread-self/ns/net", &st);
  if (rc != 0) return {0, 0};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

NetnsGuard::NetnsGuard(Napi::Env env, int targetFd) {
  if (targetFd < 0) return;
  origFd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (origFd_ < 0) ThrowBpf(env, "open(/proc/thread-self/ns/net)", errno);
  if (setns(targetFd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(origFd_);
    origFd_ = -1;
    ThrowBpf(env, "setns(CLONE_NEWNET)", err);
  }
}

NetnsGuard::~NetnsGuard() {
  if (origFd_ < 0) return;
  if (setns(origFd_, CLONE_NEWNET) != 0) {
    // Continuing would run the rest of the agent (sockets, later attaches) in the wrong
    // namespace without anyone noticing; failing loudly is the only safe option.
    fprintf(stderr, "bpf-loader: cannot return to the original network namespace: %s\n", strerror(errno));
    abort();
  }
  close(origFd_);
}

}  // namespace fcl
