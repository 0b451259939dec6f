// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* XDP drop list on node interfaces: drops IPv4/IPv6 packets whose source or destination is in
 * drop4/drop6 (LPM tries written live by user space, an expiry per entry; bitmaps and hashes of
 * the host entries keep most lookups off the tries), counts them per entry
 * (drop_counts) and reports them as sampled drop events: at most one per entry, source and
 * destination port per event_interval_ns, carrying how many packets were lost since the previous
 * one, and at most events_per_sec per CPU in all, so that a flood cannot flood the ring.
 * With --syn-flood-protect, it also drops the TCP SYNs of sources over their budget (syn_guard).
 * Everything else passes untouched (one VLAN tag is looked through). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdp.h"
#include "flowctl.h"
#include "budget.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_ICMPV6_ 58 /* a #define in uapi headers, absent from vmlinux.h */

/* Knobs, set by the loader before load. */
const volatile __u64 event_interval_ns = 1000000000ULL; /* per entry and source */
const volatile __u32 events_per_sec = 1000;              /* per CPU, all entries */
const volatile __u32 abi_version = FCX_ABI_VERSION;      /* read back by the loader */

/* fcx_drop_event records; the loader may resize it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} xdp_events SEC(".maps");

/* struct fcx_key4 (LPM) -> struct fcx_entry */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fcx_key4);
	__type(value, struct fcx_entry);
} drop4 SEC(".maps");

/* struct fcx_key6 (LPM) -> struct fcx_entry */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fcx_key6);
	__type(value, struct fcx_entry);
} drop6 SEC(".maps");

/* u32 word -> u64 bits: bit (a >> 8) & 63 of word a >> 14 is set when some drop4 entry covers
 * the /24 of IPv4 address a (host order). A passing packet then costs two array reads, not two
 * trie walks (about 60 ns each with 10,000 entries); user space keeps it in step with drop4. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FCX_BITS4_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} drop4_bits SEC(".maps");

/* The same layout: set when an entry shorter than /32 covers the /24. Where only /32 entries
 * do, the address is looked up in drop4_hosts (a hash) instead of walking the trie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FCX_BITS4_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} drop4_short SEC(".maps");

/* u32 IPv4 address (network order) -> struct fcx_entry: the /32 entries of drop4 again */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct fcx_entry);
} drop4_hosts SEC(".maps");

/* u32 word -> u64 bits: bit h & 63 of word h >> 6, h = fcx_hash64() of an IPv6 /64, is set when a
 * drop6 entry of /64 or longer lies in that /64 (or one whose hash is the same). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FCX_BITS6_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} drop6_bits SEC(".maps");

/* The same layout: set when an entry of /64 to /127 lies in the /64. Where only /128 entries do,
 * the address is looked up in drop6_hosts instead of walking the trie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FCX_BITS6_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} drop6_mid SEC(".maps");

/* The same layout by fcx_hash32() of an IPv6 /32: set when an entry shorter than /64 covers (part
 * of) that /32; addresses there walk the trie. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FCX_BITS6_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} drop6_short SEC(".maps");

/* struct in6_addr (network order) -> struct fcx_entry: the /128 entries of drop6 again */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct in6_addr);
	__type(value, struct fcx_entry);
} drop6_hosts SEC(".maps");

/* u32 entry id -> struct fcx_count per CPU (created at an entry's first drop; user space deletes
 * it with the entry) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 524288);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct fcx_count);
} drop_counts SEC(".maps");

/* struct fcx_src_key -> struct fcx_src_value (the sampling state per entry, source and port; shared by
 * CPUs, hence atomic adds: a per-CPU LRU would preallocate max_entries values per CPU) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fcx_src_key);
	__type(value, struct fcx_src_value);
} drop_srcs SEC(".maps");

/* enum fcx_counter -> u64 per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FCX_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} xdp_counters SEC(".maps");

/* 0 -> the time this CPU's bucket of events_per_sec drop events (burst: a second's) is full */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} xdp_budget SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&xdp_counters, &which);

	if (v)
		*v += 1;
}

/* One more drop event on this CPU, if its bucket allows. */
static __always_inline int take_budget(__u64 now)
{
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&xdp_budget, &zero);

	return full && events_per_sec && bucket_take(full, now, 1000000000ULL / events_per_sec, events_per_sec);
}

/* Summaries of the SYNs syn_guard drops (budget.bpf.h), on this program's ring. */
static void budget_emit(struct flowctl_suppressed_event *ev)
{
	ev->type = FCX_EV_SUPPRESSED;
	if (bpf_ringbuf_output(&xdp_events, ev, sizeof(*ev), 0))
		count(FCX_CNT_RINGBUF_FULL);
	else
		count(FCX_CNT_SUMMARIES);
}

/* What a drop event reports of the packet besides its addresses. */
struct l4info {
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
};

static __always_inline void parse_l4(void *l4, void *end, __u8 proto, struct l4info *o)
{
	__u8 *b = l4;

	o->proto = proto;
	if (proto == IPPROTO_TCP) {
		if ((void *)(b + 14) > end)
			return;
		o->tcp_flags = b[13];
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_) {
		if ((void *)(b + 2) > end)
			return;
		o->icmp_type = b[0];
		o->icmp_code = b[1];
		return;
	} else if (proto != IPPROTO_UDP && proto != IPPROTO_SCTP) {
		return;
	}
	if ((void *)(b + 4) > end)
		return;
	o->sport = ((__u16)b[0] << 8) | b[1];
	o->dport = ((__u16)b[2] << 8) | b[3];
}

/* Counts the drop and sends an event when the (entry, source) sample is due. */
static __always_inline void report(struct xdp_md *ctx, const struct fcx_entry *e, __u8 ipv,
				   const __u8 *saddr, const __u8 *daddr, void *l4, __u8 proto,
				   __u8 match, __u64 now)
{
	struct fcx_src_key sk = {};
	struct fcx_src_value *sv, nv = {};
	struct fcx_drop_event *ev;
	struct fcx_count *c, nc = {};
	struct l4info li = {};
	void *end = (void *)(long)ctx->data_end;
	__u64 len = (void *)(long)ctx->data_end - (void *)(long)ctx->data;
	__u32 id = e->id;

	c = bpf_map_lookup_elem(&drop_counts, &id);
	if (c) {
		c->packets++;
		c->bytes += len;
	} else {
		nc.packets = 1;
		nc.bytes = len;
		bpf_map_update_elem(&drop_counts, &id, &nc, BPF_NOEXIST);
	}

	parse_l4(l4, end, proto, &li);
	sk.id = id;
	sk.ip_version = ipv;
	sk.proto = li.proto;
	sk.dport = li.dport;
	if (ipv == 6)
		__builtin_memcpy(sk.addr, saddr, 16);
	else
		__builtin_memcpy(sk.addr, saddr, 4);
	sv = bpf_map_lookup_elem(&drop_srcs, &sk);
	if (!sv) {
		bpf_map_update_elem(&drop_srcs, &sk, &nv, BPF_NOEXIST);
		sv = bpf_map_lookup_elem(&drop_srcs, &sk);
		if (!sv)
			return;
	}
	__sync_fetch_and_add(&sv->packets, 1);
	__sync_fetch_and_add(&sv->bytes, len);
	if (!bucket_take(&sv->full_ns, now, event_interval_ns, 1))
		return;
	if (!take_budget(now)) {
		count(FCX_CNT_EVENTS_OVER_BUDGET);
		return;
	}
	ev = bpf_ringbuf_reserve(&xdp_events, sizeof(*ev), 0);
	if (!ev) {
		count(FCX_CNT_RINGBUF_FULL);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = FCX_EV_DROP;
	ev->abi_version = FCX_ABI_VERSION;
	ev->ip_version = ipv;
	ev->proto = li.proto;
	ev->tcp_flags = li.tcp_flags;
	ev->icmp_type = li.icmp_type;
	ev->icmp_code = li.icmp_code;
	ev->match = match;
	ev->ts_ns = bpf_ktime_get_ns();
	/* The counts restart with the next packet; one that raced in between goes to the next event. */
	ev->packets = __sync_lock_test_and_set(&sv->packets, 0);
	ev->bytes = __sync_lock_test_and_set(&sv->bytes, 0);
	ev->entry_id = id;
	ev->ifindex = ctx->ingress_ifindex;
	ev->sport = li.sport;
	ev->dport = li.dport;
	if (ipv == 6) {
		__builtin_memcpy(ev->saddr, saddr, 16);
		__builtin_memcpy(ev->daddr, daddr, 16);
	} else {
		__builtin_memcpy(ev->saddr, saddr, 4);
		__builtin_memcpy(ev->daddr, daddr, 4);
	}
	bpf_ringbuf_submit(ev, 0);
	count(FCX_CNT_EVENTS);
}

/* The entry if it still drops; an expired one is counted and passes. */
static __always_inline const struct fcx_entry *live(const struct fcx_entry *e, __u64 *now)
{
	if (!e)
		return 0;
	*now = bpf_ktime_get_coarse_ns();
	if (e->expires_ns && *now >= e->expires_ns) {
		count(FCX_CNT_EXPIRED);
		return 0;
	}
	return e;
}

/* Bit i of a bitmap of 64-bit words (drop4_bits and the like). */
static __always_inline int bit_set(void *bits, __u32 i)
{
	__u32 word = i >> 6;
	__u64 *w = bpf_map_lookup_elem(bits, &word);

	return w && ((*w >> (i & 63)) & 1);
}

/* The entry for IPv4 address `be` (network order): none where no entry covers its /24, the
 * hash where only /32 entries do, the trie (longest match) otherwise. */
static __always_inline const struct fcx_entry *lookup4(__u32 be)
{
	struct fcx_key4 k = { .prefixlen = 32 };
	__u32 a = bpf_ntohl(be);

	if (!bit_set(&drop4_bits, a >> 8))
		return 0;
	if (!bit_set(&drop4_short, a >> 8))
		return bpf_map_lookup_elem(&drop4_hosts, &be);
	__builtin_memcpy(k.addr, &be, 4);
	return bpf_map_lookup_elem(&drop4, &k);
}

/* The entry for IPv6 address a: the trie where an entry shorter than /128 may cover it, else the
 * hash where a /128 entry may share its /64, else none (two array reads, the common case). */
static __always_inline const struct fcx_entry *lookup6(const struct in6_addr *a)
{
	struct fcx_key6 k = { .prefixlen = 128 };
	__u32 w0 = bpf_ntohl(a->in6_u.u6_addr32[0]);
	__u32 h64;

	if (!bit_set(&drop6_short, fcx_hash32(w0))) {
		h64 = fcx_hash64(w0, bpf_ntohl(a->in6_u.u6_addr32[1]));
		if (!bit_set(&drop6_bits, h64))
			return 0;
		if (!bit_set(&drop6_mid, h64))
			return bpf_map_lookup_elem(&drop6_hosts, a);
	}
	__builtin_memcpy(k.addr, a, 16);
	return bpf_map_lookup_elem(&drop6, &k);
}

/* A TCP SYN (without ACK) syn_guard looks at: addresses as budget.bpf.h keeps them. */
struct syn_pkt {
	__u32 src[4];
	__u32 dst[4];
	__u16 dport;
	__u8 ip_version;
};

/* --syn-flood-protect on a node interface: a SYN spends a token of its source (budget.bpf.h, per
 * interface; sources without a bucket share one). Over budget, it is dropped when its destination
 * had more than syn_protect_halfopen over-budget SYNs in the window, and added to its source's
 * summary. XDP keeps no connections, so every over-budget SYN counts as half-open here (TC, which
 * sees handshakes complete, subtracts those). Other packets, established connections' included,
 * never come here. */
static __noinline int syn_guard(struct xdp_md *ctx, const struct syn_pkt *s)
{
	struct budget_key key = {}, dkey = {};
	struct budget_event e = {};
	struct conn_budget *b;
	__u64 now = bpf_ktime_get_ns();

	if (!s)
		return XDP_PASS;
	key.scope = ctx->ingress_ifindex;
	key.ip_version = s->ip_version;
	b = budget_spend(&key, s->src, now);
	if (!b)
		return XDP_PASS;
	dkey.scope = key.scope;
	dkey.ip_version = key.ip_version;
	__builtin_memcpy(dkey.addr, s->dst, 16);
	if (syn_dest_add(&dkey, 1, now) <= syn_protect_halfopen)
		return XDP_PASS;
	count(FCX_CNT_SYN_DROPPED);
	e.src = s->src;
	e.dst = s->dst;
	e.dst_port = s->dport;
	e.ifindex = key.scope;
	e.flags = 0x02; /* SYN */
	e.proto = IPPROTO_TCP;
	e.verdict = FLOWCTL_VERDICT_DROPPED;
	e.drop_reason = FLOWCTL_DROP_RATE_LIMITED;
	budget_add(b, &key, &e);
	return XDP_DROP;
}

/* Whether the TCP header at l4 is a SYN without ACK or RST; its destination port into s. */
static __always_inline int is_syn(const __u8 *l4, void *end, struct syn_pkt *s)
{
	if ((void *)(l4 + 14) > end || (l4[13] & 0x16) != 0x02)
		return 0;
	s->dport = ((__u16)l4[2] << 8) | l4[3];
	return 1;
}

/* An IPv4 packet for syn_guard if it is a SYN (not a fragment). */
static __always_inline int guard4(struct xdp_md *ctx, struct iphdr *iph, void *end)
{
	struct syn_pkt s = { .ip_version = 4 };

	if (iph->protocol != IPPROTO_TCP || (iph->frag_off & bpf_htons(0x1fff)) ||
	    !is_syn((const __u8 *)iph + iph->ihl * 4, end, &s))
		return XDP_PASS;
	s.src[0] = iph->saddr;
	s.dst[0] = iph->daddr;
	return syn_guard(ctx, &s);
}

/* An IPv6 packet for syn_guard if it is a SYN right after the fixed header. */
static __always_inline int guard6(struct xdp_md *ctx, struct ipv6hdr *ip6, void *end)
{
	struct syn_pkt s = { .ip_version = 6 };

	if (ip6->nexthdr != IPPROTO_TCP || !is_syn((const __u8 *)(ip6 + 1), end, &s))
		return XDP_PASS;
	__builtin_memcpy(s.src, &ip6->saddr, 16);
	__builtin_memcpy(s.dst, &ip6->daddr, 16);
	return syn_guard(ctx, &s);
}

static __always_inline int handle4(struct xdp_md *ctx, void *ip, void *end)
{
	struct iphdr *iph = ip;
	const struct fcx_entry *e;
	__u8 match = FCX_MATCH_SOURCE;
	__u64 now = 0;
	__u16 frag;

	if ((void *)(iph + 1) > end)
		return XDP_PASS;
	e = live(lookup4(iph->saddr), &now);
	if (!e) {
		e = live(lookup4(iph->daddr), &now);
		match = FCX_MATCH_DESTINATION;
	}
	if (!e)
		return syn_protect_halfopen ? guard4(ctx, iph, end) : XDP_PASS;
	count(FCX_CNT_DROPPED);
	/* A non-first fragment has no L4 header: reported with protocol 0. */
	frag = iph->frag_off & bpf_htons(0x1fff);
	report(ctx, e, 4, (const __u8 *)&iph->saddr, (const __u8 *)&iph->daddr,
	       ip + iph->ihl * 4, frag ? 0 : iph->protocol, match, now);
	return XDP_DROP;
}

static __always_inline int handle6(struct xdp_md *ctx, void *ip, void *end)
{
	struct ipv6hdr *ip6 = ip;
	const struct fcx_entry *e;
	__u8 match = FCX_MATCH_SOURCE;
	__u64 now = 0;

	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	e = live(lookup6(&ip6->saddr), &now);
	if (!e) {
		e = live(lookup6(&ip6->daddr), &now);
		match = FCX_MATCH_DESTINATION;
	}
	if (!e)
		return syn_protect_halfopen ? guard6(ctx, ip6, end) : XDP_PASS;
	count(FCX_CNT_DROPPED);
	/* L4 only right after the fixed header; behind extension headers the event has no ports. */
	report(ctx, e, 6, (const __u8 *)&ip6->saddr, (const __u8 *)&ip6->daddr, ip6 + 1,
	       ip6->nexthdr, match, now);
	return XDP_DROP;
}

SEC("xdp")
int flowctl_xdp_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = data + ETH_HLEN;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (l3 + 4 > end)
			return XDP_PASS;
		proto = *(__u16 *)(l3 + 2);
		l3 += 4;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return handle4(ctx, l3, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return handle6(ctx, l3, end);
	return XDP_PASS;
}
