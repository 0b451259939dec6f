// Test object for the bpf-loader suite: one program per capability the addon exposes.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 retval_magic = 0;
const volatile __u64 tag64 = 0;
const volatile __u32 target_tgid = 0;
const volatile __u32 events_per_run = 1;
__u64 bss_counter = 0;

// index (0 IPv4 packets, 1 UDP among them) -> packet count
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

// arbitrary u32 -> u64, for CRUD tests
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u64);
} kv SEC(".maps");

// 0 -> per-CPU u32 (value size rounds up to 8 per CPU in user space)
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} pcpu SEC(".maps");

// 0 -> fork events seen from target_tgid, 1 -> raw tracepoint hits, 2 -> lost ring-buffer samples
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

// event records: u64 sequence number, u64 tag
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

struct event {
  __u64 seq;
  __u64 tag;
};

static __always_inline void bump(void *map, __u32 idx) {
  __u64 *v = bpf_map_lookup_elem(map, &idx);
  if (v) __sync_fetch_and_add(v, 1);
}

SEC("tc")
int count_ingress(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end) return TC_ACT_OK;
  bump(&counters, 0);
  if (ip->protocol == IPPROTO_UDP) bump(&counters, 1);
  return TC_ACT_OK;
}

// Returns retval_magic and rewrites the first byte of the packet, so test_run can check both
// the return value and data_out.
SEC("tc")
int ret_magic(struct __sk_buff *skb) {
  __u8 b = 0xab;
  bpf_skb_store_bytes(skb, 0, &b, 1, 0);
  __u32 k = 0;
  __u32 *p = bpf_map_lookup_elem(&pcpu, &k);
  if (p) *p += 1;
  bss_counter += tag64;
  return retval_magic;
}

// Emits events_per_run events per invocation; with test_run repeat this fills the ring quickly.
SEC("tc")
int writer(struct __sk_buff *skb) {
  for (__u32 i = 0; i < 4096; i++) {
    if (i >= events_per_run) break;
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
      bump(&stats, 2);
      continue;
    }
    e->seq = __sync_fetch_and_add(&bss_counter, 1);
    e->tag = tag64;
    bpf_ringbuf_submit(e, 0);
  }
  return TC_ACT_OK;
}

SEC("tracepoint/sched/sched_process_fork")
int on_fork(void *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) == target_tgid) bump(&stats, 0);
  return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int on_fork_raw(void *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) == target_tgid) bump(&stats, 1);
  return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("cgroup_skb/egress")
int cg_skb(struct __sk_buff *skb) { return 1; }

SEC("cgroup/sock_create")
int cg_sock(struct bpf_sock *sk) { return 1; }

SEC("cgroup/connect4")
int cg_connect4(struct bpf_sock_addr *ctx) { return 1; }
