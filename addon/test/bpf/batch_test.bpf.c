// Maps only, for the batch update/delete tests: one of each kind the agent writes in batches
// (hash, LPM trie) plus per-CPU and array maps, whose batch value layout differs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

// u32 -> u64, large enough for a batch that spans several 65,536-element chunks
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 150000);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, __u64);
} big SEC(".maps");

// u32 -> per-CPU u32 (each CPU's slot rounds up to 8 bytes in user space)
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} pcpu_kv SEC(".maps");

struct lpm_v4_key {
  __u32 prefixlen;
  __u8 addr[4];
};

// IPv4 prefix -> u32, as the agent's ipcache
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm_v4_key);
  __type(value, __u32);
} lpm SEC(".maps");

// u32 index -> u64 (12-byte values would not round: arrays keep value_size as is)
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u64);
} arr SEC(".maps");

// a tiny hash that fills up: E2BIG mid-batch
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, __u64);
} small SEC(".maps");
