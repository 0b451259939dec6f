/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Budgets of per-packet events under floods: the owner of "how many events are sent one by one".
 * bucket_take() is the token bucket every program uses (the XDP drop list's events per CPU and
 * per entry too); the rest is the per-source budgets of new flows, shared by the TC program (new
 * connections), the tracepoint program (kernel drops of connection attempts) and the XDP program
 * (--syn-flood-protect on node interfaces).
 *
 * Each source (an address within a scope: an interface, or a network namespace) has a token bucket
 * per kind of flow (enum budget_kind), kept as the time it is full again. An event over budget is
 * not sent: it is added to its source's summary, which a timer sends budget_report_ns after the
 * window's first suppressed event (struct flowctl_suppressed_event, through the including
 * program's budget_emit()). Sources without a bucket of their own share one per scope and kind
 * (the all-zero address) until it admits them, so a flood from random addresses costs one entry,
 * not one per address.
 *
 * Tracing programs cannot use bpf_timer (the verifier refuses a map holding one): an includer that
 * defines BUDGET_NO_TIMER has buckets without one, and sends a window's summary with the first
 * event suppressed after the window ended (the last window of a flood waits for the next one;
 * its events are in the includer's suppressed counter meanwhile). */
#ifndef __FLOWCTL_BUDGET_BPF_H
#define __FLOWCTL_BUDGET_BPF_H

/* One token per budget_interval_ns (0: no budgets), at most budget_burst in the bucket. */
const volatile __u64 budget_interval_ns = 10000000ULL; /* 100 per second */
const volatile __u32 budget_burst = 1000;
const volatile __u64 budget_report_ns = 1000000000ULL;
/* DNS refills faster (the loader sets ten times the others' rate, the same burst): every lookup is
 * a new flow (a new source port), a pod resolving through search domains makes several per name,
 * and toFQDNs learns addresses only from answers that are not suppressed. A flood at port 53 stays
 * bounded by it. Kernel drops are not learned from: the tracepoint program keeps the others' rate. */
const volatile __u64 budget_dns_interval_ns = 1000000ULL;

/* Which bucket of its source a new flow spends: kinds have buckets of their own, so that a flood of
 * one kind (or the ICMP errors a UDP flood makes a pod send) cannot hide the source's other flows. */
enum budget_kind {
	BUDGET_TCP = 0,
	BUDGET_UDP,  /* and every protocol not named here */
	BUDGET_ICMP, /* ICMP and ICMPv6 */
	BUDGET_DNS,  /* UDP to or from port 53 */
};

static __always_inline __u8 budget_kind(__u8 proto, __u16 port0, __u16 port1)
{
	if (proto == IPPROTO_TCP)
		return BUDGET_TCP;
	if (proto == IPPROTO_ICMP || proto == 58 /* ICMPv6 */)
		return BUDGET_ICMP;
	if (proto == IPPROTO_UDP && (port0 == 53 || port1 == 53))
		return BUDGET_DNS;
	return BUDGET_UDP;
}

/* The ICMP type a flow's opener sent, reported for the flow: an echo reply's is its request's. */
static __always_inline __u16 budget_icmp_type(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP && type == 0)
		return 8;
	if (proto == 58 && type == 129)
		return 128;
	return type;
}

/* A token bucket of one token per interval_ns, at most `burst`, kept as the time it is full again
 * (*full_ns): takes a token, 1 when there was one. Two CPUs may both take the last token of a
 * shared bucket (no atomic): a budget is approximate by that much. */
static __always_inline int bucket_take(__u64 *full_ns, __u64 now, __u64 interval_ns, __u32 burst)
{
	__u64 full = *full_ns > now ? *full_ns : now;

	if (full - now > (__u64)(burst - 1) * interval_ns)
		return 0;
	*full_ns = full + interval_ns;
	return 1;
}

#define CLOCK_MONOTONIC_ 1 /* a #define in uapi headers */

/* A source on a scope (all-zero address: the sources without a bucket of their own). */
struct budget_key {
	__u32 addr[4];
	__u32 scope; /* ifindex (TC, XDP) or network namespace inode (kernel drops) */
	__u8 ip_version;
	__u8 kind; /* enum budget_kind */
	__u8 pad[2];
};

struct conn_budget {
#ifndef BUDGET_NO_TIMER
	struct bpf_timer timer; /* the summary's; armed by the window's first suppressed event */
#endif
	__u64 full_ns;          /* the bucket is full from this time on (one token = budget_interval_ns) */
	__u64 first_ns;
	__u64 last_ns;
	__u64 packets;
	__u64 syns;
	__u64 dropped;
	__u32 src[4];
	__u32 dst[4];
	__u32 flags;
	__u32 armed;
	__u32 ifindex;
	__u16 dst_port;
	__u16 drop_reason;
	__u8 obs;
	__u8 verdict;
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct budget_key);
	__type(value, struct conn_budget);
} budgets SEC(".maps");

/* 0 -> a new bucket being made (kept off the callers' stack frames); raw bytes, as a per-CPU map
 * cannot hold a bpf_timer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[sizeof(struct conn_budget)]);
} budget_scratch SEC(".maps");

/* Sends a summary on the including program's ring (and counts it). */
static void budget_emit(struct flowctl_suppressed_event *ev);

static __always_inline int budget_key_zero(const struct budget_key *key)
{
	return !(key->addr[0] | key->addr[1] | key->addr[2] | key->addr[3]);
}

static __always_inline __u64 budget_interval(const struct budget_key *key)
{
	return key->kind == BUDGET_DNS ? budget_dns_interval_ns : budget_interval_ns;
}

/* Takes a token of the bucket of `key`'s kind: 1 when there was one. */
static __always_inline int budget_take(struct conn_budget *b, const struct budget_key *key, __u64 now)
{
	return bucket_take(&b->full_ns, now, budget_interval(key), budget_burst);
}

/* Adds a bucket for `key`, full less `spent` tokens (another CPU's may win: then theirs stays). */
static __always_inline void budget_new(const struct budget_key *key, __u64 now, __u32 spent)
{
	__u32 zero = 0;
	struct conn_budget *fresh = bpf_map_lookup_elem(&budget_scratch, &zero);

	if (!fresh)
		return;
	__builtin_memset(fresh, 0, sizeof(*fresh));
	fresh->full_ns = now + spent * budget_interval(key);
	bpf_map_update_elem(&budgets, key, fresh, BPF_NOEXIST);
}

/* The bucket of source `addr` in `key`'s scope: its own, else the shared one (then `key` is
 * zeroed). */
static __always_inline struct conn_budget *budget_find(struct budget_key *key, const __u32 *addr)
{
	struct conn_budget *b;

	__builtin_memcpy(key->addr, addr, 16);
	b = bpf_map_lookup_elem(&budgets, key);
	if (b)
		return b;
	__builtin_memset(key->addr, 0, 16);
	return bpf_map_lookup_elem(&budgets, key);
}

/* Spends a token of source `addr` in `key`'s scope (key->scope and ip_version set). Returns the
 * bucket to add the event to when over budget, NULL when the event may be sent. */
static __always_inline struct conn_budget *budget_spend(struct budget_key *key, const __u32 *addr, __u64 now)
{
	struct conn_budget *b = budget_find(key, addr);

	if (!b) {
		/* The scope's first event from a source without a bucket: make the shared one. */
		budget_new(key, now, 0);
		b = bpf_map_lookup_elem(&budgets, key);
		if (!b)
			return NULL;
	}
	if (!budget_take(b, key, now))
		return b;
	if (budget_key_zero(key)) {
		/* Admitted by the shared bucket: the source gets its own, less this token. */
		__builtin_memcpy(key->addr, addr, 16);
		budget_new(key, now, 1);
	}
	return NULL;
}

/* Sends a bucket's summary of the window and starts the next one (the timer's callback). */
static int budget_report(void *map, struct budget_key *key, struct conn_budget *b)
{
	struct flowctl_suppressed_event ev = {};

	/* Disarmed first: an event suppressed from here on arms the next window. */
	b->armed = 0;
	ev.packets = __sync_lock_test_and_set(&b->packets, 0);
	if (!ev.packets)
		return 0;
	ev.syns = __sync_lock_test_and_set(&b->syns, 0);
	ev.dropped = __sync_lock_test_and_set(&b->dropped, 0);
	ev.tcp_flags = __sync_lock_test_and_set(&b->flags, 0);
	ev.abi_version = FLOWCTL_ABI_VERSION;
	ev.ip_version = key->ip_version;
	ev.proto = b->proto;
	ev.obs_point = b->obs;
	ev.verdict = b->verdict;
	ev.many_sources = budget_key_zero(key);
	ev.drop_reason = ev.dropped ? b->drop_reason : 0;
	ev.dst_port = b->dst_port;
	ev.ifindex = b->ifindex;
	ev.scope = key->scope;
	ev.ts_ns = bpf_ktime_get_ns();
	ev.first_ns = b->first_ns;
	ev.last_ns = b->last_ns;
	b->first_ns = 0;
	__builtin_memcpy(ev.src_ip, b->src, 16);
	__builtin_memcpy(ev.dst_ip, b->dst, 16);
	budget_emit(&ev);
	return 0;
}

/* What a suppressed event was about. */
struct budget_event {
	const __u32 *src; /* the source the budget is of (the connection's opener) */
	const __u32 *dst;
	__u32 ifindex;
	__u16 dst_port; /* ICMP: the opener's type (budget_icmp_type) */
	__u16 flags; /* TCP flags */
	__u16 drop_reason;
	__u8 proto;
	__u8 obs;
	__u8 verdict;
};

/* Adds a suppressed event to bucket b (of `key`)'s summary, arming the window's timer. */
static __always_inline void budget_add(struct conn_budget *b, struct budget_key *key, const struct budget_event *e)
{
	__u64 now = bpf_ktime_get_ns();

#ifdef BUDGET_NO_TIMER
	if (b->first_ns && now - b->first_ns >= budget_report_ns)
		budget_report(NULL, key, b);
#endif
	__sync_fetch_and_add(&b->packets, 1);
	if ((e->flags & 0x12) == 0x02) /* SYN without ACK */
		__sync_fetch_and_add(&b->syns, 1);
	if (e->verdict == FLOWCTL_VERDICT_DROPPED) {
		__sync_fetch_and_add(&b->dropped, 1);
		b->drop_reason = e->drop_reason;
	}
	__sync_fetch_and_or(&b->flags, e->flags);
	if (!b->first_ns)
		b->first_ns = now;
	b->last_ns = now;
	__builtin_memcpy(b->src, e->src, 16);
	__builtin_memcpy(b->dst, e->dst, 16);
	b->dst_port = e->dst_port;
	b->ifindex = e->ifindex;
	b->proto = e->proto;
	b->obs = e->obs;
	b->verdict = e->verdict;
#ifndef BUDGET_NO_TIMER
	if (b->armed || __sync_val_compare_and_swap(&b->armed, 0, 1) != 0)
		return;
	bpf_timer_init(&b->timer, &budgets, CLOCK_MONOTONIC_); /* -EBUSY once initialised */
	bpf_timer_set_callback(&b->timer, budget_report);
	bpf_timer_start(&b->timer, budget_report_ns, 0);
#endif
}

/* --syn-flood-protect: over-budget SYNs to a destination with more half-open attempts than this
 * in the current window are dropped (0: never). */
const volatile __u32 syn_protect_halfopen = 0;

/* Destination -> half-open attempts in the window: TC, over-budget SYNs minus completed handshakes;
 * XDP, which sees no handshakes, over-budget SYNs. */
struct syn_dest {
	__u64 window_ns;
	__s64 halfopen;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct budget_key);
	__type(value, struct syn_dest);
} syn_dests SEC(".maps");

/* Moves destination `key`'s half-open count in the current window by `delta`; returns it. */
static __always_inline __s64 syn_dest_add(const struct budget_key *key, __s64 delta, __u64 now)
{
	struct syn_dest *d = bpf_map_lookup_elem(&syn_dests, key), fresh = {};

	if (!d) {
		if (delta <= 0)
			return 0;
		fresh.window_ns = now;
		bpf_map_update_elem(&syn_dests, key, &fresh, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&syn_dests, key);
		if (!d)
			return 0;
	}
	if (now - d->window_ns >= budget_report_ns) {
		d->window_ns = now;
		d->halfopen = 0;
	}
	return __sync_fetch_and_add(&d->halfopen, delta) + delta;
}

#endif /* __FLOWCTL_BUDGET_BPF_H */
