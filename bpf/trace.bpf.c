// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tracepoint programs: TCP lifecycle (sock/inet_sock_set_state, tcp/tcp_retransmit_skb) and
 * kernel drops (skb/kfree_skb), limited to the network namespaces user space watches.
 *
 * Raw tracepoints rather than tracefs tracepoints: they need neither tracefs mounted nor the
 * tracepoint's format file, and their arguments are the kernel objects themselves, read through
 * CO-RE. (kprobes and fentry are not available on the target kernels.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "trace.h"
#include "flowctl.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define IPPROTO_ICMPV6 58 /* not in vmlinux.h: it is a #define in the uapi headers */
#define ETH_P_IPV6 0x86DD
#define TCP_CLOSE_STATE 7 /* enum tcp_state TCP_CLOSE; vmlinux.h has no macro for it */

/* Ring size is set by user space (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} trace_events SEC(".maps");

/* enum fct_counter -> u64 per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FCT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} trace_counters SEC(".maps");

/* netns inode -> 1 (filled by user space from the endpoints' network namespaces) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched_netns SEC(".maps");

struct sock_info {
	__u64 start_ns; /* first state transition seen */
	__u8 opener; /* enum fct_opener, from the handshake's transition */
	__u8 pad[7];
};

/* struct sock * -> sock_info. LRU so that sockets whose close we never see (program attached
 * mid-life, map pressure) cannot fill it for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_info);
} sock_start SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&trace_counters, &which);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

#define BUDGET_NO_TIMER /* tracing programs cannot use bpf_timer */
#include "budget.bpf.h"

static void budget_emit(struct flowctl_suppressed_event *ev)
{
	ev->type = FCT_EV_KDROP_SUMMARY;
	if (bpf_ringbuf_output(&trace_events, ev, sizeof(*ev), 0))
		count(FCT_CNT_RINGBUF_FULL);
	else
		count(FCT_CNT_KDROP_SUMMARIES);
}

static __always_inline bool watched(__u32 ino)
{
	return ino && bpf_map_lookup_elem(&watched_netns, &ino);
}

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* ---- TCP lifecycle ---------------------------------------------------------------------- */

static __always_inline void fill_sock(struct fct_sock_event *e, const struct sock *sk, __u32 ino)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	e->abi_version = FCT_ABI_VERSION;
	e->ts_ns = bpf_ktime_get_ns();
	e->netns_ino = ino;
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* A failed connect: inet_put_port() cleared skc_num, inet_sport still holds the port. */
	if (!e->sport)
		e->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		e->ip_version = 6;
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		e->ip_version = 4;
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
	}
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3; /* stored <<3 (Jacobson's fixed point) */
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(fct_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk, now;
	struct sock_info *info, fresh = {};
	struct fct_sock_event *e;
	__u32 ino;
	__u8 opener;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	ino = sock_netns(sk);
	if (!watched(ino))
		return 0;

	e = bpf_ringbuf_reserve(&trace_events, sizeof(*e), 0);
	if (!e) {
		count(FCT_CNT_RINGBUF_FULL);
		/* still keep the start time so the close event, if it fits, has its duration */
	} else {
		__builtin_memset(e, 0, sizeof(*e));
		fill_sock(e, sk, ino);
		e->type = FCT_EV_SOCK_STATE;
		e->old_state = oldstate;
		e->new_state = newstate;
		e->sk_err = BPF_CORE_READ(sk, sk_err);
	}
	now = e ? e->ts_ns : bpf_ktime_get_ns();

	/* Only the handshake's transition says who opened: remember it for the close. */
	opener = oldstate == TCP_SYN_SENT ? FCT_OPENER_SELF : oldstate == TCP_SYN_RECV ? FCT_OPENER_PEER : FCT_OPENER_UNKNOWN;
	info = bpf_map_lookup_elem(&sock_start, &key);
	if (info) {
		if (opener)
			info->opener = opener;
		if (e) {
			e->duration_ns = now - info->start_ns;
			e->opener = info->opener;
		}
		if (newstate == TCP_CLOSE_STATE)
			bpf_map_delete_elem(&sock_start, &key);
	} else if (newstate != TCP_CLOSE_STATE) {
		fresh.start_ns = now;
		fresh.opener = opener;
		if (bpf_map_update_elem(&sock_start, &key, &fresh, BPF_ANY))
			count(FCT_CNT_SOCK_MAP_FULL);
	}
	if (e && !e->opener)
		e->opener = opener;
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(fct_tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	__u64 key = (__u64)sk;
	struct sock_info *info;
	struct fct_sock_event *e;
	__u32 ino = sock_netns(sk);

	if (!watched(ino))
		return 0;
	e = bpf_ringbuf_reserve(&trace_events, sizeof(*e), 0);
	if (!e) {
		count(FCT_CNT_RINGBUF_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_sock(e, sk, ino);
	e->type = FCT_EV_RETRANSMIT;
	e->old_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e->new_state = e->old_state;
	info = bpf_map_lookup_elem(&sock_start, &key);
	if (info)
		e->duration_ns = e->ts_ns - info->start_ns;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- kernel drops ----------------------------------------------------------------------- */

#define MAP_REASON(name)                                                                   \
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_##name) &&    \
	    r == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_##name))        \
		return FCT_DROP_##name;

static __always_inline __u16 stable_reason(__u32 r)
{
	MAP_REASON(NO_SOCKET)
	MAP_REASON(PKT_TOO_SMALL)
	MAP_REASON(TCP_CSUM)
	MAP_REASON(UDP_CSUM)
	MAP_REASON(NETFILTER_DROP)
	MAP_REASON(OTHERHOST)
	MAP_REASON(IP_CSUM)
	MAP_REASON(IP_INHDR)
	MAP_REASON(IP_RPFILTER)
	MAP_REASON(IP_NOPROTO)
	MAP_REASON(SOCKET_FILTER)
	MAP_REASON(SOCKET_RCVBUFF)
	MAP_REASON(PROTO_MEM)
	MAP_REASON(IP_OUTNOROUTES)
	MAP_REASON(IP_INNOROUTES)
	MAP_REASON(IP_INADDRERRORS)
	MAP_REASON(IP_INVALID_SOURCE)
	MAP_REASON(IP_LOCAL_SOURCE)
	MAP_REASON(IP_INVALID_DEST)
	MAP_REASON(NEIGH_FAILED)
	MAP_REASON(QDISC_DROP)
	MAP_REASON(TC_INGRESS)
	MAP_REASON(TC_EGRESS)
	MAP_REASON(HDR_TRUNC)
	MAP_REASON(UNHANDLED_PROTO)
	MAP_REASON(ICMP_CSUM)
	MAP_REASON(TCP_INVALID_SYN)
	MAP_REASON(TCP_RESET)
	MAP_REASON(TCP_FLAGS)
	MAP_REASON(TCP_OLD_DATA)
	MAP_REASON(SOCKET_CLOSE)
	MAP_REASON(PKT_TOO_BIG)
	return FCT_DROP_OTHER;
}

/* Netns of a dropped skb: its device's, else its socket's (drops after the device was cleared). */
static __always_inline __u32 skb_netns(const struct sk_buff *skb, const struct sock *rx_sk,
				       __u32 *ifindex)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	const struct sock *sk;

	if (dev) {
		*ifindex = BPF_CORE_READ(dev, ifindex);
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	sk = rx_sk ? rx_sk : BPF_CORE_READ(skb, sk);
	if (sk)
		return sock_netns(sk);
	return 0;
}

#define PARSE_OK 0
#define PARSE_NOT_IP 1 /* ARP and friends, IPv6 link-local control: nothing a flow describes */
#define PARSE_UNREADABLE 2

/* Fills addresses and L4 fields from the skb's own headers. */
static __always_inline int parse_skb(const struct sk_buff *skb, struct fct_kdrop_event *e)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 l3proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u8 first, l4[16];
	__u32 l4off;

	if (nh == (__u16)~0U || !head)
		return PARSE_UNREADABLE;
	if (bpf_probe_read_kernel(&first, 1, head + nh))
		return PARSE_UNREADABLE;
	if (l3proto != ETH_P_IP && l3proto != ETH_P_IPV6) {
		/* Locally generated skbs may not have skb->protocol set yet: trust the header. */
		if ((first >> 4) == 4)
			l3proto = ETH_P_IP;
		else if ((first >> 4) == 6)
			l3proto = ETH_P_IPV6;
		else
			return PARSE_NOT_IP;
	}
	if (l3proto == ETH_P_IP) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh) || ip.version != 4)
			return PARSE_UNREADABLE;
		e->ip_version = 4;
		e->proto = ip.protocol;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
		/* Non-first fragments carry no L4 header. */
		if (ip.frag_off & bpf_htons(0x1fff))
			return PARSE_OK;
		l4off = nh + ip.ihl * 4;
	} else {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh) || ip6.version != 6)
			return PARSE_UNREADABLE;
		/* Link-local multicast (ff02::/16: ND, MLD reports) is dropped with IP_OUTNOROUTES
		 * by every namespace whose link comes up before it has IPv6 routes: not traffic. */
		if (ip6.daddr.in6_u.u6_addr8[0] == 0xff && (ip6.daddr.in6_u.u6_addr8[1] & 0x0f) == 2)
			return PARSE_NOT_IP;
		e->ip_version = 6;
		e->proto = ip6.nexthdr;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
		/* Extension headers: use the transport header the stack already found, if any. */
		l4off = nh + sizeof(ip6);
		if (th != (__u16)~0U && th > nh)
			l4off = th;
	}
	if (bpf_probe_read_kernel(l4, sizeof(l4), head + l4off))
		return PARSE_OK; /* L3 is known; a short packet just has no ports */
	switch (e->proto) {
	case IPPROTO_TCP:
		e->tcp_flags = l4[13];
		/* fallthrough */
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		e->sport = (__u16)l4[0] << 8 | l4[1];
		e->dport = (__u16)l4[2] << 8 | l4[3];
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		e->icmp_type = l4[0];
		e->icmp_code = l4[1];
		break;
	}
	return PARSE_OK;
}

/* Drops of TCP connection attempts (SYN, SYN-ACK, RST: a flood's) and of any UDP or ICMP packet
 * (a UDP flood at a closed port is one drop per packet) spend a token of their connection's opener
 * in the namespace (budget.bpf.h, the bucket of the flow's kind); over budget, the drop is added to
 * the source's summary instead of sent. Returns 1 when suppressed. */
static __always_inline int over_budget(const struct fct_kdrop_event *e)
{
	struct budget_key key = {};
	struct budget_event be = {};
	struct conn_budget *b;
	const __u32 *s = (const __u32 *)e->saddr, *d = (const __u32 *)e->daddr;
	int reply, icmp = e->proto == IPPROTO_ICMP || e->proto == IPPROTO_ICMPV6;

	if (!budget_interval_ns || (e->proto == IPPROTO_TCP && !(e->tcp_flags & 0x06)))
		return 0;
	/* The opener: a SYN-ACK's or echo reply's receiver, a SYN's or datagram's sender, else
	 * the side with the higher port. */
	if (e->proto != IPPROTO_TCP)
		reply = icmp && (e->icmp_type == (e->proto == IPPROTO_ICMP ? 0 : 129));
	else if ((e->tcp_flags & 0x12) == 0x12)
		reply = 1;
	else if (e->tcp_flags & 0x02)
		reply = 0;
	else
		reply = e->sport < e->dport;
	key.scope = e->netns_ino;
	key.ip_version = e->ip_version;
	key.kind = budget_kind(e->proto, e->sport, e->dport);
	b = budget_spend(&key, reply ? d : s, e->ts_ns);
	if (!b)
		return 0;
	count(FCT_CNT_KDROP_SUPPRESSED);
	be.src = reply ? d : s;
	be.dst = reply ? s : d;
	be.dst_port = icmp ? budget_icmp_type(e->proto, e->icmp_type) : reply ? e->sport : e->dport;
	be.ifindex = e->ifindex;
	be.flags = e->tcp_flags;
	be.proto = e->proto;
	be.verdict = FLOWCTL_VERDICT_DROPPED;
	be.drop_reason = e->reason;
	budget_add(b, &key, &be);
	return 1;
}

/* rx_sk, the 4th argument, exists since Linux 6.11 (the target kernel is 6.18); raw_tp attach
 * refuses a program reading past the tracepoint's arguments, so older kernels fail loudly. */
SEC("raw_tp/kfree_skb")
int BPF_PROG(fct_kfree_skb, const struct sk_buff *skb, void *location, int reason,
	     const struct sock *rx_sk)
{
	struct fct_kdrop_event ev = {}, *e;
	__u32 ino, ifindex = 0;

	/* NOT_SPECIFIED is every kfree_skb() without a reason (mostly internal clean-up, also
	 * forwarding to a blackhole route); CONSUMED is a normal free. Neither is worth a flow. */
	if (reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED))
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	/* QUEUE_PURGE (6.9+): packets still queued on a socket being closed, not a network drop. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_QUEUE_PURGE) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_QUEUE_PURGE))
		return 0;
	/* XDP (6.3+): a generic-mode XDP_DROP. The drop list reports its own drops, sampled; one
	 * event per packet here would let a flood at a generic-mode interface flood this ring. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_XDP) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_XDP))
		return 0;
	ino = skb_netns(skb, rx_sk, &ifindex);
	if (!watched(ino))
		return 0;

	e = &ev;
	switch (parse_skb(skb, e)) {
	case PARSE_OK:
		break;
	case PARSE_UNREADABLE:
		count(FCT_CNT_KDROP_UNPARSED);
		/* fallthrough */
	default:
		return 0;
	}
	e->type = FCT_EV_KDROP;
	e->abi_version = FCT_ABI_VERSION;
	e->ts_ns = bpf_ktime_get_ns();
	e->netns_ino = ino;
	e->ifindex = ifindex;
	e->kernel_reason = reason;
	e->reason = stable_reason(reason);
	if (over_budget(e))
		return 0;
	if (bpf_ringbuf_output(&trace_events, e, sizeof(*e), 0))
		count(FCT_CNT_RINGBUF_FULL);
	return 0;
}
