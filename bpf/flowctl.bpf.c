// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TC datapath: flow observation, policy verdict and L7 snippet capture, attached at TC ingress
 * (packets from the endpoint) and TC egress (packets to the endpoint) of each endpoint's
 * host-side veth.
 *
 * Aggregation happens here, not in user space: one event per connection and direction for the
 * first packet, new SYN/FIN/RST flags, close, a stats update every stats_interval_ns, policy
 * drops/audits, and DNS/HTTP payloads. Everything else only updates the connection entry.
 * Packets this program cannot parse are passed untouched and counted. */
/* vmlinux.h has a `typedef ... config` (zstd); the map must be named config (contract). */
#define config vmlinux_config_t
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flowctl.h"
#include "maps.bpf.h"
#include "parse.bpf.h"
#include "policy.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* TC_ACT_* are #defines in uapi headers, absent from vmlinux.h. TC_ACT_OK rather than
 * TC_ACT_UNSPEC: the verdict of this program is final for the packet. */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* Knobs, set by the loader before load (frozen afterwards, so the verifier prunes dead paths). */
const volatile __u32 max_payload = 512;                 /* capped at FLOWCTL_MAX_PAYLOAD */
const volatile __u32 every_packet = 0;                  /* 1: an event for every packet */
const volatile __u64 stats_interval_ns = 5000000000ULL; /* 0: no stats events */
const volatile __u32 policy_audit = 0;                  /* 1: report AUDIT, never drop */
const volatile __u32 abi_version = FLOWCTL_ABI_VERSION; /* read back by the loader */
/* Possible CPUs (libbpf_num_possible_cpus()), for summing conn4_cache over them; 0 (or more than
 * FLOWCTL_MAX_CPUS): conn4_cache is not used. */
const volatile __u32 nr_cpus = 0;
#define FLOWCTL_MAX_CPUS 1024

_Static_assert(__builtin_offsetof(struct flow_event, payload) == FLOWCTL_FLOW_EVENT_HDR_LEN,
	       "flow_event header size");
_Static_assert(sizeof(struct flowctl_conn_key) == 44, "conn key size");
_Static_assert(sizeof(struct flowctl_conn4_key) == 20, "conn4 key size");

#define EPOCH_NONE (~0ULL)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Stats intervals shorter than this (5 ticks at HZ=100) read the precise clock on every packet;
 * longer ones read it at most once per jiffy per connection (see clock_due), so a stats event is
 * at most one tick late. */
#define PRECISE_CLOCK_BELOW_NS 50000000ULL

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline void count_n(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		*v += n;
}

static __always_inline int addr_cmp(const __u32 *a, const __u32 *b)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static __always_inline int is_icmp(__u8 proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_;
}

/* Which side opened the connection, from its first packet seen. A TCP connection first seen
 * mid-stream gets a guess (the side with the higher port is the client) used for the verdict,
 * while events report is_reply as unknown. */
static __always_inline __u8 opener_of(const struct pkt *p, int side)
{
	__u16 syn_ack = p->tcp_flags & (TCP_SYN | TCP_ACK);

	if (p->proto == IPPROTO_TCP) {
		if (syn_ack == TCP_SYN)
			return side;
		if (syn_ack == (TCP_SYN | TCP_ACK))
			return side ^ 1;
		return (p->sport > p->dport ? side : side ^ 1) | FLOWCTL_OPENER_GUESSED;
	}
	if ((p->proto == IPPROTO_ICMP && p->icmp_type == 0) ||
	    (p->proto == IPPROTO_ICMPV6_ && p->icmp_type == 129))
		return side ^ 1; /* echo reply first: the peer pinged */
	return side;
}

/* (Re)computes identities and the verdict of the connection under the current config epoch.
 * The verdict is always that of the opening direction, so replies share it. Returns 1 when a
 * previously cached verdict changed. */
__noinline int evaluate(struct flowctl_conn *c, const struct flowctl_conn_key *k, int side,
			__u32 obs, __u64 epoch)
{
	struct decision d;
	__u8 o, orig_obs;
	__u32 id0, id1, id_open, id_resp;
	__u16 port;
	__u8 dir, verdict;
	int changed;

	if (!c || !k)
		return 0;
	o = c->opener & 1;
	orig_obs = side == o ? obs : (FLOWCTL_OBS_FROM_ENDPOINT + FLOWCTL_OBS_TO_ENDPOINT - obs);
	id0 = lookup_identity(k->addr[0], k->ip_version);
	id1 = lookup_identity(k->addr[1], k->ip_version);
	id_open = o ? id1 : id0;
	id_resp = o ? id0 : id1;
	port = is_icmp(k->proto) ? 0 : (o ? k->port[0] : k->port[1]);

	dir = orig_obs == FLOWCTL_OBS_FROM_ENDPOINT ? FLOWCTL_DIR_EGRESS : FLOWCTL_DIR_INGRESS;
	if (c->opener & FLOWCTL_OPENER_NO_POLICY) {
		d.allow = 1;
		d.enforced = 0;
		d.rule_ref = 0;
	} else if (dir == FLOWCTL_DIR_EGRESS) {
		policy_decide(id_open, id_resp, port, k->proto, dir, &d);
	} else {
		policy_decide(id_resp, id_open, port, k->proto, dir, &d);
	}
	verdict = d.allow ? FLOWCTL_VERDICT_FORWARDED
			  : (policy_audit ? FLOWCTL_VERDICT_AUDIT : FLOWCTL_VERDICT_DROPPED);
	changed = c->epoch != EPOCH_NONE && c->verdict != verdict;
	c->identity[0] = id0;
	c->identity[1] = id1;
	c->verdict = verdict;
	c->policy_ref = d.rule_ref;
	c->drop_reason = d.allow ? 0 : FLOWCTL_DROP_POLICY_DENIED;
	c->policy_direction = dir;
	c->epoch = epoch;
	return changed;
}

static __always_inline int match4(const __u8 *b, const char *s)
{
	return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3];
}

/* HTTP/1.x by the start of a request line or a status line, from the first 8 payload bytes (on
 * the stack or in the packet). */
static __always_inline int is_http(const __u8 *b)
{
	if (match4(b, "GET ") || match4(b, "POST") || match4(b, "PUT ") || match4(b, "HEAD") ||
	    match4(b, "DELE") || match4(b, "PATC") || match4(b, "OPTI") || match4(b, "CONN") ||
	    match4(b, "TRAC"))
		return 1;
	return match4(b, "HTTP") && b[4] == '/' && b[5] == '1' && b[6] == '.';
}

/* Records what the HTTP check of a payload found for one direction (see FLOWCTL_STATE_HTTP0). */
static __always_inline void note_http(struct flowctl_conn *c, int side, int http)
{
	__u32 seen = FLOWCTL_STATE_HTTP0 << side;

	if (c->state & seen)
		return;
	__sync_fetch_and_or(&c->state, http ? seen : (FLOWCTL_STATE_NOHTTP0 << side));
}

/* DNS by port; HTTP/1.x by is_http(), unless this direction already proved not to be HTTP. */
static __always_inline __u8 detect_l7(struct __sk_buff *skb, const struct pkt *p,
				      struct flowctl_conn *c, int side)
{
	__u8 b[8];
	int http;

	if (p->sport == 53 || p->dport == 53)
		return (p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP) ? FLOWCTL_L7_DNS
									    : FLOWCTL_L7_NONE;
	if (p->proto != IPPROTO_TCP || p->payload_len < 8 ||
	    (c->state & (FLOWCTL_STATE_NOHTTP0 << side)))
		return FLOWCTL_L7_NONE;
	if (bpf_skb_load_bytes(skb, p->payload_off, b, 8))
		return FLOWCTL_L7_NONE;
	http = is_http(b);
	note_http(c, side, http);
	return http ? FLOWCTL_L7_HTTP : FLOWCTL_L7_NONE;
}

/* The config epoch (see struct flowctl_config). */
static __always_inline __u64 config_epoch(void)
{
	__u32 zero = 0;
	struct flowctl_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg ? cfg->epoch : 0;
}

/* Frozen rodata: the verifier keeps one branch. */
static __always_inline int precise_clock(void)
{
	return stats_interval_ns && stats_interval_ns < PRECISE_CLOCK_BELOW_NS;
}

/* Whether a connection's clock_jiffies is ever set: only then can fast4 (which checks it, and not
 * these knobs, so that its packets do not read the knobs' line) count a packet without the slow
 * path. With every_packet, each packet needs an event; with a precise clock, a clock read. */
static __always_inline int jiffy_clock(void)
{
	return !every_packet && !precise_clock();
}

static __always_inline int stats_due(const struct flowctl_conn *c, __u64 now)
{
	return stats_interval_ns && !(c->state & FLOWCTL_STATE_CLOSED) && now > c->last_emit_ns &&
	       now - c->last_emit_ns >= stats_interval_ns;
}

/* A connection's direction `side` (its counters and last_seen), and its last_seen overall. */
static __always_inline struct flowctl_conn_dir *conn_dir(struct flowctl_conn *c, __u32 side)
{
	return side ? &c->dir1 : &c->dir0;
}

static __always_inline __u64 conn_last_seen(const struct flowctl_conn *c)
{
	return c->dir0.last_seen_ns > c->dir1.last_seen_ns ? c->dir0.last_seen_ns : c->dir1.last_seen_ns;
}

/* The clock of the per-packet path. Even bpf_ktime_get_coarse_ns() costs ~16 ns here (helper
 * calls and returns are expensive with the SRSO "safe RET" mitigation), about a fifth of an
 * established packet, while bpf_jiffies64() is one load: the precise clock is read only when the
 * jiffy changed since this connection last read it. Updates the direction's last_seen_ns;
 * returns whether a stats event is due. */
static __always_inline int clock_due(struct flowctl_conn *c, __u32 side)
{
	struct flowctl_conn_dir *d = conn_dir(c, side);
	__u64 now, j;

	if (jiffy_clock()) {
		j = bpf_jiffies64();
		if (j == c->clock_jiffies)
			return 0;
		c->clock_jiffies = j;
	}
	now = bpf_ktime_get_ns();
	if (now > d->last_seen_ns)
		d->last_seen_ns = now;
	return stats_due(c, now);
}

#define EMIT_HOW(side, obs, reason, l7) ((side) | (obs) << 8 | (reason) << 16 | (l7) << 24)
/* With EMIT_HOW(): the scratch event's four counters hold the connection's pending counts in
 * every CPU's conn4_cache (conn4_cached_sum), to which emit adds the connection's own. */
#define EMIT_CACHED 2

/* Global, verified once (see parse_packet); at most 5 arguments, hence `how` = EMIT_HOW().
 * Takes its own precise timestamp: the per-packet path reads the clock only once per jiffy. */
__noinline int emit(struct __sk_buff *skb, const struct pkt *p, struct flowctl_conn *c, __u32 how)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0, n = 0, cap = max_payload;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	__u32 side = how & 1;
	__u8 obs = how >> 8, reason = how >> 16, l7 = how >> 24;

	if (!ev || !p || !c)
		return 0;
	/* The event is about this packet: it is the last one seen, and maybe the first. */
	if (!c->first_seen_ns)
		c->first_seen_ns = now;
	conn_dir(c, side)->last_seen_ns = now;
	c->last_emit_ns = now;
	if (jiffy_clock())
		c->clock_jiffies = bpf_jiffies64(); /* the precise clock was read in this jiffy */
	ev->type = FLOWCTL_EV_FLOW;
	ev->abi_version = abi_version;
	ev->obs_point = obs;
	ev->reason = reason;
	ev->verdict = c->verdict;
	ev->ip_version = p->ip_version;
	ev->proto = p->proto;
	ev->l7 = l7;
	ev->ts_ns = now;
	if (!(how & EMIT_CACHED))
		ev->packets = ev->bytes = ev->reply_packets = ev->reply_bytes = 0;
	ev->packets += conn_dir(c, side)->packets;
	ev->bytes += conn_dir(c, side)->bytes;
	ev->reply_packets += conn_dir(c, side ^ 1)->packets;
	ev->reply_bytes += conn_dir(c, side ^ 1)->bytes;
	ev->first_seen_ns = c->first_seen_ns;
	ev->last_seen_ns = conn_last_seen(c);
	ev->ifindex = skb->ifindex;
	ev->src_identity = c->identity[side];
	ev->dst_identity = c->identity[side ^ 1];
	ev->policy_ref = c->policy_ref;
	ev->payload_len = p->payload_len;
	ev->tcp_seq = p->tcp_seq;
	ev->tcp_ack = p->tcp_ack;
	__builtin_memcpy(ev->src_ip, p->src, 16);
	__builtin_memcpy(ev->dst_ip, p->dst, 16);
	ev->src_port = p->sport;
	ev->dst_port = p->dport;
	ev->tcp_flags = p->tcp_flags;
	ev->tcp_flags_seen = c->flags_seen[side] | p->tcp_flags;
	ev->drop_reason = c->drop_reason;
	ev->icmp_type = p->icmp_type;
	ev->icmp_code = p->icmp_code;
	ev->is_reply = (c->opener & FLOWCTL_OPENER_GUESSED) ? FLOWCTL_REPLY_UNKNOWN
				: (side != (c->opener & 1) ? FLOWCTL_REPLY_YES : FLOWCTL_REPLY_NO);
	ev->policy_direction = c->policy_direction;
	__builtin_memcpy(ev->eth_src, p->eth_src, 6);
	__builtin_memcpy(ev->eth_dst, p->eth_dst, 6);

	if (l7 != FLOWCTL_L7_NONE) {
		if (cap > FLOWCTL_MAX_PAYLOAD)
			cap = FLOWCTL_MAX_PAYLOAD;
		n = p->payload_len;
		if (n > cap) {
			n = cap;
			count(FLOWCTL_CNT_L7_TRUNCATED);
		}
		/* Re-bound for the verifier: clang may fold the clamps above into one. */
		asm volatile("%0 &= 0x7ff" : "+r"(n));
		if (n > FLOWCTL_MAX_PAYLOAD)
			n = FLOWCTL_MAX_PAYLOAD;
		if (n > 0 && bpf_skb_load_bytes(skb, p->payload_off, ev->payload, n))
			n = 0;
	}
	ev->captured_len = n;
	if (bpf_ringbuf_output(&events, ev, FLOWCTL_FLOW_EVENT_HDR_LEN + n, 0)) {
		count(FLOWCTL_CNT_RINGBUF_FULL);
		return 0;
	}
	count(FLOWCTL_CNT_EVENTS);
	return 1;
}

static __noinline int conn4_cached_sum(const struct flowctl_conn_key *k, const struct flowctl_conn *c,
				       __u32 side);

/* Accounts one packet in connection `c` (a map value, or a stack copy when the map is full),
 * decides whether it is worth an event, and returns the TC action. */
static __always_inline int account(struct __sk_buff *skb, const struct pkt *p,
				   struct flowctl_conn *c, const struct flowctl_conn_key *k,
				   int side, __u8 obs, __u64 epoch)
{
	__u32 seen_bit = side ? FLOWCTL_STATE_SEEN1 : FLOWCTL_STATE_SEEN0;
	__u32 newf = 0, first = 0, closing = 0, changed = 0;
	__u8 reason = 0, l7 = FLOWCTL_L7_NONE, verdict;
	__u32 how;

	if (c->epoch != epoch)
		changed = evaluate(c, k, side, obs, epoch);

	__sync_fetch_and_add(&conn_dir(c, side)->packets, 1);
	__sync_fetch_and_add(&conn_dir(c, side)->bytes, skb->len);
	/* Atomics only when something is new: the established path stays plain loads. */
	if (p->tcp_flags & ~c->flags_seen[side])
		newf = p->tcp_flags & ~__sync_fetch_and_or(&c->flags_seen[side], p->tcp_flags) &
		       (TCP_SYN | TCP_FIN | TCP_RST);
	if (!(c->state & seen_bit))
		first = !(__sync_fetch_and_or(&c->state, seen_bit) & seen_bit);
	if (newf & (TCP_FIN | TCP_RST) && !(c->state & FLOWCTL_STATE_CLOSED) &&
	    ((newf & TCP_RST) || (c->flags_seen[side ^ 1] & TCP_FIN)))
		closing = !(__sync_fetch_and_or(&c->state, FLOWCTL_STATE_CLOSED) &
			    FLOWCTL_STATE_CLOSED);

	verdict = c->verdict;
	if (verdict == FLOWCTL_VERDICT_DROPPED)
		count(FLOWCTL_CNT_POLICY_DROPPED);
	else if (verdict == FLOWCTL_VERDICT_AUDIT)
		count(FLOWCTL_CNT_POLICY_AUDIT);
	if (verdict != FLOWCTL_VERDICT_DROPPED && p->payload_len)
		l7 = detect_l7(skb, p, c, side);

	if (verdict != FLOWCTL_VERDICT_FORWARDED && (first || newf || changed))
		reason = FLOWCTL_REASON_POLICY;
	else if (l7 != FLOWCTL_L7_NONE)
		reason = FLOWCTL_REASON_L7;
	else if (closing)
		reason = FLOWCTL_REASON_CLOSE;
	else if (first || changed)
		reason = FLOWCTL_REASON_NEW;
	else if (newf)
		reason = FLOWCTL_REASON_FLAGS;
	else if (clock_due(c, side)) /* last: an event sets the times itself */
		reason = FLOWCTL_REASON_STATS;
	else if (every_packet)
		reason = FLOWCTL_REASON_SAMPLE;
	if (reason) {
		how = EMIT_HOW(side, obs, reason, l7);
		if (c->cached && k->ip_version == 4 && conn4_cached_sum(k, c, side))
			how |= EMIT_CACHED;
		emit(skb, p, c, how);
	}
	return verdict == FLOWCTL_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline void conn4_key(const struct flowctl_conn_key *k, struct flowctl_conn4_key *k4)
{
	k4->addr[0] = k->addr[0][0];
	k4->addr[1] = k->addr[1][0];
	k4->ifindex = k->ifindex;
	k4->port[0] = k->port[0];
	k4->port[1] = k->port[1];
	k4->proto = k->proto;
}

/* Seeds the conns4 and conns6 hashes; the loader sets a random one so that peers cannot aim at
 * one set. */
const volatile __u32 conn4_seed = 0;

/* A multiplicative hash of a connection's canonical addresses (one word each), ports and the rest
 * of its key, inline (no helper call). */
static __always_inline __u32 conn_hash(__u32 a0, __u32 a1, __u32 ports, __u32 rest)
{
	__u32 h = conn4_seed;

	h = (h ^ a0) * 0x9E3779B1u;
	h = (h ^ a1) * 0x85EBCA77u;
	h = (h ^ ports) * 0xC2B2AE3Du;
	h = (h ^ rest) * 0x27D4EB2Fu;
	return h ^ (h >> 15);
}

/* The first slot of the conns4 set of the 20-byte key. */
static __always_inline __u32 conn4_set(const struct flowctl_conn4_key *k)
{
	__u32 h = conn_hash(k->addr[0], k->addr[1], k->port[0] | (__u32)k->port[1] << 16,
			    k->ifindex ^ ((__u32)k->proto << 24));

	return (h & (FLOWCTL_CONN4_SLOTS - 1)) & ~(__u32)(FLOWCTL_CONN4_WAYS - 1);
}

static __always_inline __u32 rol32(__u32 x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* An IPv6 address in one word for conn_hash (rotated, so that equal words do not cancel). */
static __always_inline __u32 fold6(const __u32 *a)
{
	return a[0] ^ rol32(a[1], 8) ^ rol32(a[2], 16) ^ rol32(a[3], 24);
}

/* The first slot of the conns6 set of the 44-byte key. */
static __always_inline __u32 conn6_set(const struct flowctl_conn_key *k)
{
	__u32 h = conn_hash(fold6(k->addr[0]), fold6(k->addr[1]), k->port[0] | (__u32)k->port[1] << 16,
			    k->ifindex ^ ((__u32)k->proto << 24));

	return (h & (FLOWCTL_CONN6_SLOTS - 1)) & ~(__u32)(FLOWCTL_CONN6_WAYS - 1);
}

static __always_inline int conn4_key_eq(const struct flowctl_conn4_key *a, const struct flowctl_conn4_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* Whether conn4_cache is in use: the loader set nr_cpus, and the sum over CPUs covers them all. */
static __always_inline int conn4_cache_on(void)
{
	return nr_cpus && nr_cpus <= FLOWCTL_MAX_CPUS;
}

/* The conn4_cache entry of a key: direct-mapped by the ports. */
static __always_inline __u32 conn4_cache_way_of_ports(__u32 ports)
{
	/* The two 16-bit ports of a word, in either order. */
	return (ports ^ (ports >> 16)) & (FLOWCTL_CONN4_CACHE_WAYS - 1);
}

static __always_inline __u32 conn4_cache_way(const struct flowctl_conn4_key *k)
{
	return conn4_cache_way_of_ports(k->port[0] | (__u32)k->port[1] << 16);
}

/* For an event of an IPv4 connection that conn4_cache may hold (c->cached): the counts pending for
 * it in every CPU's cache, by side, into the scratch event (emit adds the connection's own counts
 * to them). Returns 1 when it did. Called before emit rather than from it: emit's frame is last in
 * the deepest call chain, at the verifier's 512-byte stack limit. */
static __noinline int conn4_cached_sum(const struct flowctl_conn_key *k, const struct flowctl_conn *c,
				       __u32 side)
{
	struct flowctl_conn4_key k4 = {};
	struct flowctl_conn4_cache *pc;
	struct flowctl_conn4_cached *e;
	struct flow_event *ev;
	__u32 zero = 0, cpu, way;

	if (!k || !c || !conn4_cache_on())
		return 0;
	ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return 0;
	side &= 1;
	conn4_key(k, &k4);
	way = conn4_cache_way(&k4);
	ev->packets = ev->bytes = ev->reply_packets = ev->reply_bytes = 0;
	for (cpu = 0; cpu < nr_cpus; cpu++) {
		pc = bpf_map_lookup_elem(&conn4_cache, &cpu);
		if (!pc)
			break;
		e = &pc->e[way];
		if (!conn4_key_eq(&e->key, &k4) || e->first_seen_ns != c->first_seen_ns)
			continue;
		/* Another CPU's counters, read while it may add to them: a packet it counts meanwhile
		 * is in the next event instead. */
		ev->packets += e->packets[side];
		ev->bytes += e->bytes[side];
		ev->reply_packets += e->packets[side ^ 1];
		ev->reply_bytes += e->bytes[side ^ 1];
	}
	return 1;
}

/* Adds an entry's pending counts to its connection's slot, if the slot still holds it (else the
 * connection is gone, and its events had these counts), and to the `packets` counter. */
static __always_inline void conn4_cache_flush(struct flowctl_conn4_cached *e)
{
	struct flowctl_conn4_slot *o;
	__u32 idx = e->slot;

	if (!e->packets[0] && !e->packets[1])
		return;
	count_n(FLOWCTL_CNT_PACKETS, (__u64)e->packets[0] + e->packets[1]);
	o = bpf_map_lookup_elem(&conns4, &idx);
	if (o && o->gen && conn4_key_eq(&o->key, &e->key) && o->conn.first_seen_ns == e->first_seen_ns) {
		if (e->packets[0]) {
			__sync_fetch_and_add(&o->conn.dir0.packets, e->packets[0]);
			__sync_fetch_and_add(&o->conn.dir0.bytes, e->bytes[0]);
		}
		if (e->packets[1]) {
			__sync_fetch_and_add(&o->conn.dir1.packets, e->packets[1]);
			__sync_fetch_and_add(&o->conn.dir1.bytes, e->bytes[1]);
		}
	}
	e->packets[0] = e->packets[1] = 0;
	e->bytes[0] = e->bytes[1] = 0;
}

/* After fast4 counted a packet of the connection in slot `idx` the long way: puts the connection in
 * this CPU's cache for the rest of the jiffy (fast4 calls it only when the entry does not hold
 * another connection for this jiffy: the first one of a jiffy keeps it). A function of its own: it
 * runs once per jiffy and entry, and fast4's frame has no room for it. */
static __noinline void conn4_cache_put(struct flowctl_conn4_slot *s, __u32 idx)
{
	struct flowctl_conn4_cache *pc;
	struct flowctl_conn4_cached *e;
	struct flowctl_conn *c;
	__u32 cpu, st, http;
	__u8 ok = 0;

	if (!s)
		return;
	cpu = bpf_get_smp_processor_id();
	pc = bpf_map_lookup_elem(&conn4_cache, &cpu);
	if (!pc)
		return;
	e = &pc->e[conn4_cache_way(&s->key)];
	c = &s->conn; /* fast4 just checked that its epoch and clock_jiffies are current */
	conn4_cache_flush(e);
	st = c->state;
	if (!(st & FLOWCTL_STATE_CLOSED) && c->verdict == FLOWCTL_VERDICT_FORWARDED &&
	    s->key.port[0] != 53 && s->key.port[1] != 53) {
		/* Payload: UDP always (not DNS), TCP once the direction proved not to be HTTP. */
		http = s->key.proto == IPPROTO_TCP;
		if (st & FLOWCTL_STATE_SEEN0)
			ok |= 1 | (!http || (st & FLOWCTL_STATE_NOHTTP0) ? 4 : 0);
		if (st & FLOWCTL_STATE_SEEN1)
			ok |= 2 | (!http || (st & (FLOWCTL_STATE_NOHTTP0 << 1)) ? 8 : 0);
	}
	e->key = s->key;
	e->slot = idx;
	e->first_seen_ns = c->first_seen_ns;
	e->jiffies = (__u32)c->clock_jiffies;
	e->epoch = (__u32)c->epoch;
	e->flags[0] = c->flags_seen[0] & ~TCP_SYN;
	e->flags[1] = c->flags_seen[1] & ~TCP_SYN;
	e->ok = ok;
	if (!c->cached)
		c->cached = 1;
}

/* The two set-associative tables, conns4 and conns6, share their code: a slot is a u32 `gen`, the
 * key (`words` u32s), and at `conn_off` the connection; its set is `ways` slots from `base`. The
 * callers pass constants, which inlining folds. */
static __always_inline int slot_key_eq(const __u32 *s, const __u32 *k, int words)
{
	int i;

#pragma unroll
	for (i = 0; i < words; i++)
		if (s[1 + i] != k[i])
			return 0;
	return 1;
}

/* The slot holding key `k`, or NULL. */
static __always_inline __u32 *slot_find(void *map, __u32 base, int ways, const __u32 *k, int words)
{
	__u32 idx, *s;
	int i;

#pragma unroll
	for (i = 0; i < ways; i++) {
		idx = base + i;
		s = bpf_map_lookup_elem(map, &idx);
		if (s && s[0] && slot_key_eq(s, k, words))
			return s;
	}
	return NULL;
}

/* Idle times after which a slot may be given to a new connection of its set (then the old one,
 * should it speak again, starts over as a new connection, as after an LRU eviction): the conntrack
 * timeouts of Cilium for closed TCP and for non-TCP, and ten minutes for open TCP. */
#define CONN_CLOSED_IDLE_NS (10ULL * 1000000000ULL)
#define CONN_DGRAM_IDLE_NS (60ULL * 1000000000ULL)
#define CONN_TCP_IDLE_NS (600ULL * 1000000000ULL)

static __always_inline int conn_reclaimable(const struct flowctl_conn *c, __u8 proto, __u64 now)
{
	__u64 last = conn_last_seen(c), idle = now > last ? now - last : 0;

	if (c->state & FLOWCTL_STATE_CLOSED)
		return idle >= CONN_CLOSED_IDLE_NS;
	return idle >= (proto == IPPROTO_TCP ? CONN_TCP_IDLE_NS : CONN_DGRAM_IDLE_NS);
}

/* Puts `init` for `k` into a table: in place when the key is there already (port reuse), else in a
 * free or reclaimable slot of its set (`proto_off`: the key's proto, from the slot's start;
 * `counter`: counts slots taken into use). 0: stored; 1: another CPU stored it first; -1: no
 * slot. */
static __always_inline int slot_store(void *map, __u32 base, int ways, const __u32 *k, int words,
				      int conn_off, int proto_off, __u32 counter,
				      const struct flowctl_conn *init, __u32 reuse)
{
	__u32 *s = slot_find(map, base, ways, k, words);
	__u32 idx, g;
	__u64 now;
	int i, j;

	if (s) {
		if (!reuse)
			return 1;
		__builtin_memcpy((void *)s + conn_off, init, sizeof(*init));
		return 0;
	}
	if (reuse)
		return -1; /* the closed connection is in the LRU map: replaced there */
	now = bpf_ktime_get_ns();
#pragma unroll
	for (i = 0; i < ways; i++) {
		idx = base + i;
		s = bpf_map_lookup_elem(map, &idx);
		if (!s)
			continue;
		g = s[0];
		if (g && !conn_reclaimable((void *)s + conn_off, ((__u8 *)s)[proto_off], now))
			continue;
		/* Claim; the loser of a race tries the next slot. The key is written last: until
		 * then lookups of the old key may still find the slot (as with LRU reuse). */
		if (__sync_val_compare_and_swap(&s[0], g, g + 1 ? g + 1 : 1) != g)
			continue;
		__builtin_memcpy((void *)s + conn_off, init, sizeof(*init));
#pragma unroll
		for (j = 0; j < words; j++)
			s[1 + j] = k[j];
		if (!g)
			count(counter);
		return 0;
	}
	return -1;
}

/* slot_find's and slot_store's arguments for each table: its set of key `k`, then its layout. */
#define CONN4_SLOT_ARGS(k)                                                                         \
	&conns4, conn4_set(k), FLOWCTL_CONN4_WAYS, (const __u32 *)(k), sizeof(*(k)) / 4
#define CONN6_SLOT_ARGS(k)                                                                         \
	&conns6, conn6_set(k), FLOWCTL_CONN6_WAYS, (const __u32 *)(k), sizeof(*(k)) / 4
#define CONN4_SLOT_LAYOUT                                                                          \
	__builtin_offsetof(struct flowctl_conn4_slot, conn),                                       \
		__builtin_offsetof(struct flowctl_conn4_slot, key.proto), FLOWCTL_CNT_CONN4_SLOTS
#define CONN6_SLOT_LAYOUT                                                                          \
	__builtin_offsetof(struct flowctl_conn6_slot, conn),                                       \
		__builtin_offsetof(struct flowctl_conn6_slot, key.proto), FLOWCTL_CNT_CONN6_SLOTS

static __always_inline struct flowctl_conn *conn4_find(const struct flowctl_conn4_key *k)
{
	__u32 *s = slot_find(CONN4_SLOT_ARGS(k));

	return s ? (void *)s + __builtin_offsetof(struct flowctl_conn4_slot, conn) : NULL;
}

static __always_inline struct flowctl_conn *conn6_find(const struct flowctl_conn_key *k)
{
	__u32 *s = slot_find(CONN6_SLOT_ARGS(k));

	return s ? (void *)s + __builtin_offsetof(struct flowctl_conn6_slot, conn) : NULL;
}

/* IPv4 connections live in conns4 (or, when their set is full, flows4); IPv6 ones in conns6 (or
 * flows). */
static __always_inline struct flowctl_conn *conn_lookup(const struct flowctl_conn_key *k)
{
	struct flowctl_conn4_key k4 = {};
	struct flowctl_conn *c;

	if (k->ip_version != 4) {
		c = conn6_find(k);
		return c ? c : bpf_map_lookup_elem(&flows, k);
	}
	conn4_key(k, &k4);
	c = conn4_find(&k4);
	return c ? c : bpf_map_lookup_elem(&flows4, &k4);
}

/* Prepares a connection entry in conn_scratch and inserts it into `conns4`, `flows4`, `conns6` or
 * `flows`. Global (verified once, and its stack zeroing stays off the established path). Returns 0
 * when the map took it. */
__noinline int new_conn(const struct flowctl_conn_key *k, const struct pkt *p, __u32 side,
			__u32 reuse)
{
	struct flowctl_conn4_key k4 = {};
	__u32 zero = 0;
	struct flowctl_conn *init = bpf_map_lookup_elem(&conn_scratch, &zero);
	__u64 flags = reuse ? BPF_ANY : BPF_NOEXIST;
	int r;

	if (!init || !k || !p)
		return -1;
	__builtin_memset(init, 0, sizeof(*init));
	init->epoch = EPOCH_NONE;
	init->opener = opener_of(p, side & 1);
	if (p->proto == IPPROTO_ICMPV6_ && p->icmp_type >= 133 && p->icmp_type <= 137)
		init->opener |= FLOWCTL_OPENER_NO_POLICY;
	/* No clock: the first packet of a connection always has an event, and emit() sets the times. */
	/* NOEXIST: another CPU may have created it meanwhile; then theirs is used. */
	if (k->ip_version != 4) {
		r = slot_store(CONN6_SLOT_ARGS(k), CONN6_SLOT_LAYOUT, init, reuse);
		if (r >= 0)
			return r;
		return bpf_map_update_elem(&flows, k, init, flags) == 0 ? 0 : 1;
	}
	conn4_key(k, &k4);
	r = slot_store(CONN4_SLOT_ARGS(&k4), CONN4_SLOT_LAYOUT, init, reuse);
	if (r >= 0)
		return r;
	return bpf_map_update_elem(&flows4, &k4, init, flags) == 0 ? 0 : 1;
}

/* Every packet the fast paths do not finish: full parse, connection setup, policy evaluation,
 * events. */
static __always_inline int handle_slow(struct __sk_buff *skb, __u32 obs)
{
	struct flowctl_conn_key k = {};
	struct flowctl_conn *init;
	struct flowctl_conn *c;
	struct pkt p = {};
	__u32 zero = 0;
	__u16 sp, dp;
	__u64 epoch;
	int r, side, reuse = 0;

	r = parse_packet(skb, &p);
	if (r == PARSE_NOT_IP) {
		count(FLOWCTL_CNT_NON_IP);
		return TC_ACT_OK;
	}
	if (r == PARSE_MALFORMED) {
		count(FLOWCTL_CNT_MALFORMED);
		return TC_ACT_OK;
	}
	if (r == PARSE_FRAGMENT) {
		/* No L4 header, so no connection to account it to; the first fragment carried the
		 * verdict. */
		count(FLOWCTL_CNT_FRAGMENTS);
		init = every_packet ? bpf_map_lookup_elem(&conn_scratch, &zero) : NULL;
		if (init) {
			__builtin_memset(init, 0, sizeof(*init));
			init->dir0.packets = 1;
			init->dir0.bytes = skb->len;
			init->verdict = FLOWCTL_VERDICT_FORWARDED;
			init->opener = FLOWCTL_OPENER_GUESSED;
			init->identity[0] = lookup_identity(p.src, p.ip_version);
			init->identity[1] = lookup_identity(p.dst, p.ip_version);
			emit(skb, &p, init, EMIT_HOW(0, obs, FLOWCTL_REASON_SAMPLE, FLOWCTL_L7_NONE));
		}
		return TC_ACT_OK;
	}

	sp = p.key_id ? p.key_id : p.sport;
	dp = p.key_id ? p.key_id : p.dport;
	r = addr_cmp(p.src, p.dst);
	side = r > 0 || (r == 0 && sp > dp);
	if (side) {
		__builtin_memcpy(k.addr[0], p.dst, 16);
		__builtin_memcpy(k.addr[1], p.src, 16);
		k.port[0] = dp;
		k.port[1] = sp;
	} else {
		__builtin_memcpy(k.addr[0], p.src, 16);
		__builtin_memcpy(k.addr[1], p.dst, 16);
		k.port[0] = sp;
		k.port[1] = dp;
	}
	k.ifindex = skb->ifindex;
	k.proto = p.proto;
	k.ip_version = p.ip_version;

	epoch = config_epoch();

	c = conn_lookup(&k);
	/* A SYN on a closed connection's tuple starts a new connection (port reuse). */
	if (c && (c->state & FLOWCTL_STATE_CLOSED) && (p.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		c = NULL;
		reuse = 1;
	}
	if (!c) {
		r = new_conn(&k, &p, side, reuse);
		c = r < 0 ? NULL : conn_lookup(&k);
		if (!c) {
			/* Not stored: account in the scratch copy new_conn prepared. */
			count(FLOWCTL_CNT_FLOW_MAP_FULL);
			c = bpf_map_lookup_elem(&conn_scratch, &zero);
			if (!c)
				return TC_ACT_OK;
		}
	}
	return account(skb, &p, c, &k, side, obs, epoch);
}

/* What fast_ipv6 found in the headers of a TCP or UDP packet. */
struct fast_pkt {
	__u8 *l4;
	__u32 l4_off; /* from skb->data */
	__u32 hlen;   /* L4 header */
	__u32 l4_len; /* L4 header + payload, from the IP length */
	__u16 sp, dp, flags;
	__u8 proto;
};

/* TCP/UDP header checks of parse_l4(); 0 when the full parser must look. */
static __always_inline int fast_l4(struct fast_pkt *f, void *end)
{
	__u8 *l4 = f->l4;

	if ((void *)(l4 + 8) > end)
		return 0;
	if (f->proto == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > end)
			return 0;
		f->hlen = (l4[12] >> 4) * 4;
		if (f->hlen < 20 || f->l4_len < f->hlen)
			return 0;
		f->flags = l4[13] | ((__u16)(l4[12] & 1) << 8);
	} else if (f->proto == IPPROTO_UDP) {
		f->hlen = 8;
		if (f->l4_len < 8)
			return 0;
	} else {
		return 0;
	}
	/* Typed loads: the packet need not be aligned (the verifier allows it where the CPU does),
	 * and one 16-bit load beats two byte loads and a shift. */
	f->sp = bpf_ntohs(*(__u16 *)l4);
	f->dp = bpf_ntohs(*(__u16 *)(l4 + 2));
	return 1;
}

/* The part of account() an established packet needs, when nothing else is. Returns -1, having
 * changed nothing, for every packet that might need more (an event, a new flag, a verdict to
 * (re)compute, L7, a jiffy to read the clock in): handle_slow then does exactly what it always
 * did. */
static __always_inline int fast_account(struct __sk_buff *skb, struct flowctl_conn *c,
					const struct fast_pkt *f, __u32 side, void *end)
{
	struct flowctl_conn_dir *d;
	__u32 plen = f->l4_len - f->hlen;
	__u64 now = 0;
	__u8 *pl, b[8];
	__u8 verdict;

	if (every_packet)
		return -1;
	if (!c || c->epoch != config_epoch())
		return -1;
	side &= 1;
	if ((f->flags & ~c->flags_seen[side]) ||
	    !(c->state & (side ? FLOWCTL_STATE_SEEN1 : FLOWCTL_STATE_SEEN0)) ||
	    ((c->state & FLOWCTL_STATE_CLOSED) && (f->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN))
		return -1;
	verdict = c->verdict;
	/* detect_l7(), on the packet itself. */
	if (verdict != FLOWCTL_VERDICT_DROPPED && plen) {
		if (f->sp == 53 || f->dp == 53)
			return -1;
		if (f->proto == IPPROTO_TCP && plen >= 8 &&
		    !(c->state & (FLOWCTL_STATE_NOHTTP0 << side))) {
			/* Real TCP payloads are mostly in page fragments, not the linear area: the
			 * load is a cache miss, paid only until a direction proves not to be HTTP. */
			pl = f->l4 + f->hlen;
			if ((void *)(pl + 8) <= end) {
				if (is_http(pl))
					return -1;
				note_http(c, side, 0);
			} else if (!bpf_skb_load_bytes(skb, f->l4_off + f->hlen, b, 8)) {
				if (is_http(b))
					return -1;
				note_http(c, side, 0);
			}
		}
	}
	if (precise_clock()) {
		now = bpf_ktime_get_ns();
		if (stats_due(c, now))
			return -1;
	} else if (bpf_jiffies64() != c->clock_jiffies) {
		return -1;
	}

	d = conn_dir(c, side);
	__sync_fetch_and_add(&d->packets, 1);
	__sync_fetch_and_add(&d->bytes, skb->len);
	if (now > d->last_seen_ns)
		d->last_seen_ns = now;
	if (verdict == FLOWCTL_VERDICT_DROPPED) {
		count(FLOWCTL_CNT_POLICY_DROPPED);
		return TC_ACT_SHOT;
	}
	if (verdict == FLOWCTL_VERDICT_AUDIT)
		count(FLOWCTL_CNT_POLICY_AUDIT);
	return TC_ACT_OK;
}

/* The conns4/flows4 key of an IPv4 packet in canonical order (addr_cmp() on the only address
 * word, then the ports), from the IP header and the host-order ports; returns the packet's side. */
static __always_inline __u32 conn4_key_of(struct flowctl_conn4_key *k, const __u8 *ip, __u16 sp,
					  __u16 dp, __u32 ifindex, __u8 proto)
{
	__u32 saddr = *(__u32 *)(ip + 12), daddr = *(__u32 *)(ip + 16);
	__u32 side = saddr > daddr || (saddr == daddr && sp > dp);

	k->addr[0] = side ? daddr : saddr;
	k->addr[1] = side ? saddr : daddr;
	k->port[0] = side ? dp : sp;
	k->port[1] = side ? sp : dp;
	k->ifindex = ifindex;
	k->proto = proto;
	return side;
}

/* fast4's packet when its connection is not in conns4: established ones whose set was full live
 * in flows4 (a hash lookup, kept out of fast4 so that its helper call does not cost fast4's
 * registers). Same checks as fast4, through fast_l4 and fast_account. */
static __always_inline int flows4_fast(struct __sk_buff *skb, __u8 *ip, void *end)
{
	struct flowctl_conn4_key k = {};
	struct fast_pkt f = {};
	__u32 side;

	f.l4 = ip + 20;
	f.l4_off = ETH_HLEN + 20;
	f.l4_len = bpf_ntohs(*(__u16 *)(ip + 2)) - 20; /* fast4 checked the IP header */
	f.proto = ip[9];
	if (!fast_l4(&f, end))
		return -1;
	side = conn4_key_of(&k, ip, f.sp, f.dp, skb->ifindex, f.proto);
	return fast_account(skb, bpf_map_lookup_elem(&flows4, &k), &f, side, end);
}

/* IPv6 with TCP or UDP right after the fixed header (no extension headers). A function of its own:
 * inline, its key and locals made the program's frame too big for the verifier's 512-byte limit on
 * the deepest call chain (program, handle_rest, emit). */
static __noinline int fast_ipv6(struct __sk_buff *skb, __u8 *ip, void *end)
{
	struct flowctl_conn *c;
	struct flowctl_conn_key k = {};
	struct fast_pkt f = {};
	const __u32 *src = (const __u32 *)(ip + 8), *dst = (const __u32 *)(ip + 24); /* in the packet */
	__u32 side;
	int r;

	if ((void *)(ip + 40) > end || (ip[0] >> 4) != 6)
		return -1;
	f.l4_len = ((__u32)ip[4] << 8) | ip[5];
	if (f.l4_len > skb->len - ETH_HLEN - 40)
		return -1;
	f.l4 = ip + 40;
	f.l4_off = ETH_HLEN + 40;
	f.proto = ip[6];
	if (!fast_l4(&f, end))
		return -1;
	r = addr_cmp(src, dst);
	side = r > 0 || (r == 0 && f.sp > f.dp);
	if (side) {
		__builtin_memcpy(k.addr[0], dst, 16);
		__builtin_memcpy(k.addr[1], src, 16);
	} else {
		__builtin_memcpy(k.addr[0], src, 16);
		__builtin_memcpy(k.addr[1], dst, 16);
	}
	k.port[0] = side ? f.dp : f.sp;
	k.port[1] = side ? f.sp : f.dp;
	k.ifindex = skb->ifindex;
	k.proto = f.proto;
	k.ip_version = 6;
	c = conn6_find(&k);
	if (!c)
		c = bpf_map_lookup_elem(&flows, &k);
	return fast_account(skb, c, &f, side, end);
}

/* The headers fast4 and cache4_hit take: IPv4 without options, not a fragment, then TCP or UDP,
 * whole in the linear area and within the IP length. */
struct fast4_hdr {
	__u32 tot;   /* IP total length */
	__u32 hlen;  /* L4 header */
	__u32 flags; /* TCP flags, NS in bit 8; 0 for UDP */
	__u8 proto;
};

static __always_inline int fast4_hdr(struct __sk_buff *skb, const __u8 *ip, void *end, struct fast4_hdr *h)
{
	const __u8 *l4 = ip + 20;

	if (unlikely((void *)(l4 + 8) > end || ip[0] != 0x45 || (*(__u16 *)(ip + 6) & bpf_htons(0x3fff))))
		return -1;
	h->tot = bpf_ntohs(*(__u16 *)(ip + 2));
	h->proto = ip[9];
	if (likely(h->proto == IPPROTO_TCP)) {
		if (unlikely((void *)(l4 + 20) > end))
			return -1;
		h->hlen = (l4[12] >> 4) * 4;
		if (unlikely(h->hlen < 20))
			return -1;
		h->flags = l4[13] | ((__u32)(l4[12] & 1) << 8);
	} else if (h->proto == IPPROTO_UDP) {
		h->hlen = 8;
		h->flags = 0;
	} else {
		return -1;
	}
	if (unlikely(h->tot < 20 + h->hlen || h->tot > skb->len - ETH_HLEN))
		return -1;
	return 0;
}

/* The established IPv4 TCP/UDP packet of a connection in its conns4 slot that only adds to the
 * counters: nearly every packet. The checks of fast_l4 and fast_account (fast_ipv6's), written
 * for footprint rather than generality: under real traffic the program's cost is mostly the cache
 * lines it touches, code and data, not its instructions (test_run, where everything stays in L1,
 * cannot show it). A connection in this CPU's conn4_cache (nearly every packet of a busy one)
 * never gets here: cache4_hit counted it. Here it touches the slot's first line, its direction's
 * line and the counter line, and the packet fills the cache entry. Everything else returns -1
 * (-2: not in conns4), having changed nothing, and goes through handle_rest. */
static __always_inline int fast4(struct __sk_buff *skb, void *data, void *end)
{
	struct flowctl_conn4_key k = {};
	struct flowctl_conn4_slot *s = NULL;
	struct fast4_hdr h;
	struct flowctl_conn4_cache *pc;
	struct flowctl_conn4_cached *e;
	struct flowctl_conn_dir *d;
	struct flowctl_conn *c;
	__u8 *ip = data + ETH_HLEN, *l4 = ip + 20;
	__u32 plen, side, cpu, idx;
	__u16 sp, dp;
	int i;

	if (fast4_hdr(skb, ip, end, &h))
		return -1;
	plen = h.tot - 20 - h.hlen;
	sp = bpf_ntohs(*(__u16 *)l4);
	dp = bpf_ntohs(*(__u16 *)(l4 + 2));
	side = conn4_key_of(&k, ip, sp, dp, skb->ifindex, h.proto);

	idx = conn4_set(&k);
#pragma unroll
	for (i = 0; i < FLOWCTL_CONN4_WAYS; i++) {
		s = bpf_map_lookup_elem(&conns4, &idx);
		if (likely(s && s->gen && conn4_key_eq(&s->key, &k)))
			break;
		s = NULL;
		idx++;
	}
	/* Not in conns4: new, or in flows4 because its set was full (flows4_fast). */
	if (unlikely(!s))
		return -2;
	c = &s->conn;
	/* Again rather than kept from above: fast4's frame has no room for more live values. */
	if (unlikely(c->epoch != config_epoch()))
		return -1;
	/* fast_account's conditions (DROPPED and AUDIT verdicts take the full path), each a reason
	 * for the full path. */
	if (unlikely((h.flags & ~c->flags_seen[side]) ||
		     !(c->state & (side ? FLOWCTL_STATE_SEEN1 : FLOWCTL_STATE_SEEN0)) ||
		     ((c->state & FLOWCTL_STATE_CLOSED) && (h.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) ||
		     c->verdict != FLOWCTL_VERDICT_FORWARDED))
		return -1;
	if (unlikely(plen && (sp == 53 || dp == 53 ||
			      (h.proto == IPPROTO_TCP && plen >= 8 &&
			       !(c->state & (FLOWCTL_STATE_NOHTTP0 << side))))))
		return -1;
	/* Never equal without jiffy_clock(). */
	if (unlikely(bpf_jiffies64() != c->clock_jiffies))
		return -1;
	d = conn_dir(c, side);
	__sync_fetch_and_add(&d->packets, 1);
	__sync_fetch_and_add(&d->bytes, skb->len);
	count(FLOWCTL_CNT_PACKETS);
	/* Not when another connection holds the cache entry for this jiffy (the call alone costs
	 * ~10 ns under test_run, and a CPU with many connections gets here for most packets). */
	if (!conn4_cache_on())
		return TC_ACT_OK;
	cpu = bpf_get_smp_processor_id();
	pc = bpf_map_lookup_elem(&conn4_cache, &cpu);
	e = pc ? &pc->e[conn4_cache_way(&k)] : NULL;
	if (e && (e->jiffies != (__u32)c->clock_jiffies || conn4_key_eq(&e->key, &k)))
		conn4_cache_put(s, idx);
	return TC_ACT_OK;
}

/* fast4's cache hit, first and on its own, written for few instructions: the verifier inlines
 * the helpers, but to clang they are calls, after which it keeps nothing in r0-r5; so each call
 * comes where few values are live (the CPU's cache first, the clock and the config epoch once only
 * the entry, the side and the skb are), and the packet's addresses and ports are compared with
 * the entry in both orientations instead of building the canonical key on the stack. For
 * anything but a hit it returns -1, having changed nothing, and fast4 starts over. */
static __always_inline int cache4_hit(struct __sk_buff *skb)
{
	struct flowctl_conn4_cache *pc;
	struct flowctl_conn4_cached *e;
	struct fast4_hdr h;
	__u32 x, saddr, daddr, side, cpu;
	__u8 *data, *end, *ip, *l4;

	cpu = bpf_get_smp_processor_id();
	pc = bpf_map_lookup_elem(&conn4_cache, &cpu);
	if (unlikely(!pc))
		return -1;
	/* The caller checked the EtherType. */
	data = skb_data(skb);
	end = skb_data_end(skb);
	ip = data + ETH_HLEN;
	l4 = ip + 20;
	if (fast4_hdr(skb, ip, end, &h))
		return -1;
	/* The ports as sp << 16 | dp; a key's port word is port[0] | port[1] << 16. */
	x = bpf_ntohl(*(__u32 *)l4);
	e = &pc->e[conn4_cache_way_of_ports(x)];
	/* Opaque from here: else clang recomputes it from pc (kept on the stack) at each use. */
	barrier_var(e);
	saddr = *(__u32 *)(ip + 12);
	daddr = *(__u32 *)(ip + 16);
	/* Side 0 first: with equal addresses and ports conn4_key_of() says side 0 too. */
	if (e->key.addr[0] == saddr && e->key.addr[1] == daddr &&
	    *(__u32 *)e->key.port == ((x << 16) | (x >> 16)))
		side = 0;
	else if (e->key.addr[0] == daddr && e->key.addr[1] == saddr && *(__u32 *)e->key.port == x)
		side = 1;
	else
		return -1;
	if (unlikely(e->key.ifindex != skb->ifindex || *(__u32 *)&e->key.proto != h.proto ||
		     !(e->ok & ((h.tot != 20 + h.hlen ? 4 : 1) << side)) || (h.flags & ~(__u32)e->flags[side])))
		return -1;
	if (unlikely(e->jiffies != (__u32)bpf_jiffies64()))
		return -1;
	if (unlikely(e->epoch != (__u32)config_epoch()))
		return -1;
	e->packets[side] += 1;
	e->bytes[side] += skb->len;
	return TC_ACT_OK;
}

/* Every packet the fast paths did not finish. A function of its own, so that its code lies after
 * fast4's and not between its lines; the call costs only the packets that get here. */
static __noinline int handle_rest(struct __sk_buff *skb, __u32 obs)
{
	count(FLOWCTL_CNT_PACKETS);
	return handle_slow(skb, obs);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 obs)
{
	void *data = skb_data(skb), *end = skb_data_end(skb);
	__u16 proto;
	int r;

	if (likely(data + ETH_HLEN <= end)) {
		proto = *(__u16 *)(data + 12);
		if (likely(proto == bpf_htons(ETH_P_IP))) {
			/* Without the rodata check of conn4_cache_on(), a line of its own: with the cache
			 * off no entry is ever filled, and no packet matches an empty one (ifindex 0). */
			r = cache4_hit(skb);
			if (likely(r >= 0))
				return r;
			/* Again: not kept across cache4_hit's calls. */
			data = skb_data(skb);
			end = skb_data_end(skb);
			r = fast4(skb, data, end);
			if (likely(r >= 0))
				return r;
			if (r == -2 && data + ETH_HLEN + 20 <= end) {
				r = flows4_fast(skb, data + ETH_HLEN, end);
				if (r >= 0) {
					count(FLOWCTL_CNT_PACKETS);
					return r;
				}
			}
		} else if (proto == bpf_htons(ETH_P_IPV6)) {
			/* Before handle_rest and its full parse. */
			r = fast_ipv6(skb, data + ETH_HLEN, end);
			if (r >= 0) {
				count(FLOWCTL_CNT_PACKETS);
				return r;
			}
		}
	}
	return handle_rest(skb, obs);
}

SEC("tc")
int flowctl_tc_ingress(struct __sk_buff *skb)
{
	return handle(skb, FLOWCTL_OBS_FROM_ENDPOINT);
}

SEC("tc")
int flowctl_tc_egress(struct __sk_buff *skb)
{
	return handle(skb, FLOWCTL_OBS_TO_ENDPOINT);
}
