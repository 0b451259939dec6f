// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TC datapath: flow observation, policy verdict and L7 snippet capture, attached at TC ingress
 * (packets from the endpoint) and TC egress (packets to the endpoint) of each endpoint's
 * host-side veth.
 *
 * Aggregation happens here, not in user space: one event per connection and direction for the
 * first packet, new SYN/FIN/RST flags, close, a stats update every stats_interval_ns, policy
 * drops/audits, and DNS/HTTP payloads. Everything else only updates the connection entry. A source
 * starting connections faster than its budget gets neither entries nor events for them, but a
 * summary per second (budget.bpf.h), so a flood cannot fill the tables or the ring.
 * Packets this program cannot parse are passed untouched and counted.
 *
 * Two paths. The slow path (handle_slow) parses the packet, finds or creates its connection,
 * evaluates policy, decides every event (account) and records in the connection what a later
 * packet of it may skip (skip_record). The fast path, one per address family (fast4, fast6),
 * checks only that record and adds the packet to the counters; anything else takes the slow path,
 * which then does everything as if there were no fast path. */
/* vmlinux.h has a `typedef ... config` (zstd); the map must be named config (contract). */
#define config vmlinux_config_t
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flowctl.h"
#include "conn.bpf.h"
#include "maps.bpf.h"
#include "parse.bpf.h"
#include "conns.bpf.h"
#include "policy.bpf.h"
#include "fqdn.bpf.h"
#include "budget.bpf.h"

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

_Static_assert(__builtin_offsetof(struct flow_event, payload) == FLOWCTL_FLOW_EVENT_HDR_LEN,
	       "flow_event header size");

#include "l7.bpf.h"

#define EPOCH_NONE (~0ULL)

static __always_inline int addr_cmp(const __u32 *a, const __u32 *b)
{
	int i;

	for (i = 0; i < 4; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static __always_inline int is_icmp(__u8 proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_;
}

/* The config epoch (see struct flowctl_config). */
static __always_inline __u64 config_epoch(void)
{
	__u32 zero = 0;
	struct flowctl_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg ? cfg->epoch : 0;
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
 * previously cached verdict changed. Global functions (this, emit, new_conn, handle_slow,
 * parse_packet) are verified once, not once per path that calls them. */
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

static __always_inline int stats_due(const struct flowctl_conn *c, __u64 now)
{
	return stats_interval_ns && !(c->state & FLOWCTL_STATE_CLOSED) && now > c->last_emit_ns &&
	       now - c->last_emit_ns >= stats_interval_ns;
}

/* At most 5 arguments, hence `how`. */
#define EMIT_HOW(side, obs, reason, l7) ((side) | (obs) << 8 | (reason) << 16 | (l7) << 24)

/* Writes the event of packet `p` of connection `c` to the ring, with its own timestamp; for HTTP
 * only builds it (L7_PENDING). */
__noinline int emit(struct __sk_buff *skb, const struct pkt *p, struct flowctl_conn *c, __u32 how)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0, n = 0;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	__u32 side = how & 1;
	__u8 obs = how >> 8, reason = how >> 16, l7 = how >> 24;
	struct conn_counts t;

	if (!ev || !p || !c)
		return 0;
	/* The event is about this packet: it is the last one seen, and maybe the first. */
	if (!c->first_seen_ns)
		c->first_seen_ns = now;
	conn_dir(c, side)->last_seen_ns = now;
	/* An L7 event makes no L3/L4 flow: the connection's periodic record stays due. */
	if (reason != FLOWCTL_REASON_L7)
		c->last_emit_ns = now;
	ev->type = FLOWCTL_EV_FLOW;
	ev->abi_version = abi_version;
	ev->obs_point = obs;
	ev->reason = reason;
	ev->verdict = c->verdict;
	ev->ip_version = p->ip_version;
	ev->proto = p->proto;
	ev->l7 = l7;
	ev->ts_ns = now;
	conn_totals(c, &t);
	ev->packets = t.packets[side];
	ev->bytes = t.bytes[side];
	ev->reply_packets = t.packets[side ^ 1];
	ev->reply_bytes = t.bytes[side ^ 1];
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
	ev->captured_off = ev->l7_more = ev->l7_msg = ev->l7_flags = ev->l7_starts = 0;
	ev->l7_start = L7_NONE;
	if (l7 == FLOWCTL_L7_HTTP)
		return l7_pending(p->payload_off, side); /* sent by l7_http_emit, on a stack of its own */
	if (l7 != FLOWCTL_L7_NONE) {
		n = p->payload_len;
		if (n > max_payload) {
			n = max_payload;
			count(FLOWCTL_CNT_L7_TRUNCATED);
		}
		/* The verifier needs the length bounded here, and clang may merge the clamp above
		 * into one it cannot follow: this mask makes the bound visible. */
		asm volatile("%0 &= 0x7ff" : "+r"(n));
		if (n > FLOWCTL_MAX_PAYLOAD)
			n = FLOWCTL_MAX_PAYLOAD;
		if (n > 0 && bpf_skb_load_bytes(skb, p->payload_off, ev->payload, n))
			n = 0;
	}
	ev->captured_len = n;
	if (bpf_ringbuf_output(&events, ev, FLOWCTL_FLOW_EVENT_HDR_LEN + n, 0)) {
		count(FLOWCTL_CNT_RINGBUF_FULL);
		l7_lost(ev->payload, n, l7);
		return 0;
	}
	count(FLOWCTL_CNT_EVENTS);
	return 1;
}

/* local endpoint address -> drop-list entry id (struct flowctl_isolate_key) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flowctl_isolate_key);
	__type(value, __u32);
} isolated SEC(".maps");

/* drop-list entry id of an isolation -> struct flowctl_isolate_count per CPU (user space deletes
 * it with the isolation) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct flowctl_isolate_count);
} isolate_counts SEC(".maps");

/* Counts a packet an isolation dropped (drop reason POLICY_DENY at TC is only isolate_verdict's). */
__noinline int isolate_count(__u32 id, __u32 len)
{
	struct flowctl_isolate_count *c, nc = {};

	c = bpf_map_lookup_elem(&isolate_counts, &id);
	if (c) {
		c->packets++;
		c->bytes += len;
		return 0;
	}
	nc.packets = 1;
	nc.bytes = len;
	bpf_map_update_elem(&isolate_counts, &id, &nc, BPF_NOEXIST);
	return 0;
}

/* An isolated endpoint (respond: isolate) opens nothing but DNS: its other egress connections are
 * dropped, whatever the policy. A function of its own, called beside evaluate: its frame does not
 * add to evaluate's (the slow path's stack is nearly full). */
__noinline int isolate_verdict(struct flowctl_conn *c, const struct flowctl_conn_key *k)
{
	struct flowctl_isolate_key ik = {};
	__u32 *id;
	__u8 o;

	if (!c || !k || c->policy_direction != FLOWCTL_DIR_EGRESS || (c->opener & FLOWCTL_OPENER_NO_POLICY))
		return 0;
	o = c->opener & 1;
	if ((o ? k->port[0] : k->port[1]) == 53 && (k->proto == IPPROTO_UDP || k->proto == IPPROTO_TCP))
		return 0;
	ik.family = k->ip_version;
	__builtin_memcpy(ik.addr, o ? k->addr[1] : k->addr[0], 16);
	id = bpf_map_lookup_elem(&isolated, &ik);
	if (!id)
		return 0;
	c->verdict = FLOWCTL_VERDICT_DROPPED;
	c->drop_reason = FLOWCTL_DROP_POLICY_DENY;
	c->policy_ref = *id;
	return 1;
}

/* Records in `c` what its later packets may skip the slow path with (struct conn_skip): nothing
 * with every_packet or a verdict other than FORWARDED (drops and audits are counted by the slow
 * path); for each side seen, its packets carrying no new TCP flag (nor a SYN once the connection
 * closed: that starts a new one), and their payloads unless L7 watches them. */
static __always_inline void skip_record(struct flowctl_conn *c, const struct flowctl_conn_key *k,
					__u64 epoch)
{
	struct conn_skip *r = &c->skip;
	__u16 no = (c->state & FLOWCTL_STATE_CLOSED) ? TCP_SYN : 0;
	__u8 mask = 0;
	int s;

	if (!every_packet && c->verdict == FLOWCTL_VERDICT_FORWARDED) {
		for (s = 0; s < 2; s++) {
			if (!(c->state & (FLOWCTL_STATE_SEEN0 << s)))
				continue;
			mask |= SKIP_BARE0 << s;
			if (!l7_watches(c, k->proto, k->port[0], k->port[1], s))
				mask |= SKIP_PAYLOAD0 << s;
		}
	}
	/* Another CPU may read the record meanwhile: it sees no mask, or the whole new record. */
	r->mask = 0;
	barrier();
	r->flags[0] = c->flags_seen[0] & ~no;
	r->flags[1] = c->flags_seen[1] & ~no;
	r->epoch = epoch;
	r->jiffies = bpf_jiffies64();
	barrier();
	r->mask = mask;
}

/* Accounts one packet in connection `c` (a map value, or a stack copy when the map is full):
 * counts it, decides its event (every reason is decided here and nowhere else), records what
 * later packets may skip, and returns the TC action. */
static __always_inline int account(struct __sk_buff *skb, const struct pkt *p, struct flowctl_conn *c,
				   const struct flowctl_conn_key *k, int side, __u8 obs, __u64 epoch)
{
	struct flowctl_conn_dir *d = conn_dir(c, side);
	__u32 seen_bit = FLOWCTL_STATE_SEEN0 << side;
	__u32 newf = 0, first = 0, closing = 0, changed = 0;
	__u8 reason = 0, l7 = FLOWCTL_L7_NONE, verdict;
	__u64 now = bpf_ktime_get_ns();

	if (c->epoch != epoch) {
		__u8 was = c->verdict;
		__u64 was_epoch = c->epoch;

		evaluate(c, k, side, obs, epoch);
		fqdn_verdict(c, k);
		isolate_verdict(c, k);
		changed = was_epoch != EPOCH_NONE && was != c->verdict;
	}

	__sync_fetch_and_add(&d->packets, 1);
	__sync_fetch_and_add(&d->bytes, p->payload_len);
	if (now > d->last_seen_ns)
		d->last_seen_ns = now;
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
	if (verdict == FLOWCTL_VERDICT_DROPPED) {
		count(FLOWCTL_CNT_POLICY_DROPPED);
		if (c->drop_reason == FLOWCTL_DROP_POLICY_DENY)
			isolate_count(c->policy_ref, skb->len);
	}
	else if (verdict == FLOWCTL_VERDICT_AUDIT)
		count(FLOWCTL_CNT_POLICY_AUDIT);
	if (verdict != FLOWCTL_VERDICT_DROPPED)
		l7 = l7_of(skb, p, c, k, side);
	/* Learned before the endpoint gets the answer: its next connection finds the address. DNS
	 * payloads always take this path; which interface reports them (l7_here) does not matter. */
	if (verdict != FLOWCTL_VERDICT_DROPPED && obs == FLOWCTL_OBS_TO_ENDPOINT && p->sport == 53 &&
	    p->payload_len && fqdn_endpoint(c->identity[side ^ 1]))
		fqdn_answer(skb, p);

	/* L7 only when nothing else is a reason: user space makes no L3/L4 flow of an L7 event. */
	if (verdict != FLOWCTL_VERDICT_FORWARDED && (first || newf || changed))
		reason = FLOWCTL_REASON_POLICY;
	else if (closing)
		reason = FLOWCTL_REASON_CLOSE;
	else if (first || changed)
		reason = FLOWCTL_REASON_NEW;
	else if (newf)
		reason = FLOWCTL_REASON_FLAGS;
	else if (stats_due(c, now))
		reason = FLOWCTL_REASON_STATS;
	else if (every_packet)
		reason = FLOWCTL_REASON_SAMPLE;
	else if (l7 != FLOWCTL_L7_NONE)
		reason = FLOWCTL_REASON_L7;
	/* `first` is done with: now whether an HTTP segment is pending. */
	first = reason && emit(skb, p, c, EMIT_HOW(side, obs, reason, l7)) == L7_PENDING ? L7_PENDING : 0;
	skip_record(c, k, epoch);
	return (verdict == FLOWCTL_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK) | first;
}

/* Prepares a connection entry in conn_scratch and stores it (conn_store). Returns 0 when a map
 * took it. */
__noinline int new_conn(const struct flowctl_conn_key *k, const struct pkt *p, __u32 side, __u32 reuse)
{
	__u32 zero = 0;
	struct flowctl_conn *init = bpf_map_lookup_elem(&conn_scratch, &zero);

	if (!init || !k || !p)
		return -1;
	__builtin_memset(init, 0, sizeof(*init));
	init->epoch = EPOCH_NONE;
	init->opener = opener_of(p, side & 1);
	if (p->proto == IPPROTO_ICMPV6_ && p->icmp_type >= 133 && p->icmp_type <= 137)
		init->opener |= FLOWCTL_OPENER_NO_POLICY;
	return conn_store(k, init, reuse);
}

static void budget_emit(struct flowctl_suppressed_event *ev)
{
	ev->type = FLOWCTL_EV_SUPPRESSED;
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(FLOWCTL_CNT_RINGBUF_FULL);
	else
		count(FLOWCTL_CNT_SUMMARIES);
}

/* The budget of new connections: whether packet p, about to start connection k opened by side o,
 * is over its source's budget (its kind's bucket). A TCP attempt (SYN, SYN-ACK, RST) or any UDP or
 * ICMP packet spends a token; a TCP packet that starts an entry without one (the ACK completing a
 * handshake whose SYN was suppressed) is always admitted and gives its source a bucket: a peer that
 * completes handshakes is not one of many spoofed ones. A function of its own: its stack frame
 * does not add to handle_slow's. */
__noinline int budget_spent(const struct flowctl_conn_key *k, const struct pkt *p, __u32 o)
{
	struct budget_key key = {};
	const __u32 *src, *dst;
	__u64 now;

	if (!budget_interval_ns || !k || !p)
		return 0;
	src = (o & 1) ? k->addr[1] : k->addr[0];
	dst = (o & 1) ? k->addr[0] : k->addr[1];
	key.scope = k->ifindex;
	key.ip_version = k->ip_version;
	key.kind = budget_kind(p->proto, k->port[0], k->port[1]);
	now = bpf_ktime_get_ns();
	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (TCP_SYN | TCP_RST)))
		return budget_spend(&key, src, now) != NULL;
	if (!budget_find(&key, src) || budget_key_zero(&key)) {
		__builtin_memcpy(key.addr, src, 16);
		budget_new(&key, now, 0);
	}
	if (syn_protect_halfopen) {
		__builtin_memcpy(key.addr, dst, 16);
		syn_dest_add(&key, -1, now);
	}
	return 0;
}

/* A packet over its source's budget: its verdict (from a connection entry in conn_scratch, not
 * stored; --syn-flood-protect may drop it), and its place in the source's summary instead of an
 * event. */
static __always_inline int suppressed(const struct flowctl_conn_key *k, const struct pkt *p, __u32 side,
				      __u32 obs, __u32 len)
{
	struct budget_key key = {};
	struct budget_event e = {};
	struct conn_budget *b;
	__u32 zero = 0;
	struct flowctl_conn *c = bpf_map_lookup_elem(&conn_scratch, &zero);
	__u8 o;

	count(FLOWCTL_CNT_SUPPRESSED);
	if (!c)
		return TC_ACT_OK;
	__builtin_memset(c, 0, sizeof(*c));
	c->epoch = EPOCH_NONE;
	c->opener = opener_of(p, side);
	o = c->opener & 1;
	evaluate(c, k, side, obs, config_epoch());
	fqdn_verdict(c, k);
	isolate_verdict(c, k);
	e.src = o ? k->addr[1] : k->addr[0];
	e.dst = o ? k->addr[0] : k->addr[1];
	e.dst_port = is_icmp(p->proto) ? budget_icmp_type(p->proto, p->icmp_type) : o ? k->port[0] : k->port[1];
	e.ifindex = k->ifindex;
	e.flags = p->tcp_flags;
	e.proto = p->proto;
	e.obs = obs;
	e.verdict = c->verdict;
	e.drop_reason = c->drop_reason;
	key.scope = k->ifindex;
	key.ip_version = k->ip_version;
	key.kind = budget_kind(p->proto, k->port[0], k->port[1]);
	if (e.verdict == FLOWCTL_VERDICT_FORWARDED && syn_protect_halfopen &&
	    (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		__builtin_memcpy(key.addr, e.dst, 16);
		if (syn_dest_add(&key, 1, bpf_ktime_get_ns()) > syn_protect_halfopen) {
			e.verdict = FLOWCTL_VERDICT_DROPPED;
			e.drop_reason = FLOWCTL_DROP_RATE_LIMITED;
			count(FLOWCTL_CNT_FLOOD_DROPPED);
		}
	} else if (e.verdict == FLOWCTL_VERDICT_DROPPED) {
		count(FLOWCTL_CNT_POLICY_DROPPED);
		if (e.drop_reason == FLOWCTL_DROP_POLICY_DENY)
			isolate_count(c->policy_ref, len);
	} else if (e.verdict == FLOWCTL_VERDICT_AUDIT) {
		count(FLOWCTL_CNT_POLICY_AUDIT);
	}
	b = budget_find(&key, e.src);
	if (b)
		budget_add(b, &key, &e);
	return e.verdict == FLOWCTL_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

/* A non-first fragment: no L4 header, so no connection to account it to (the first fragment
 * carried the verdict); with every_packet, an event of its own. */
static __always_inline int fragment(struct __sk_buff *skb, const struct pkt *p, __u32 obs)
{
	__u32 zero = 0;
	struct flowctl_conn *c;

	count(FLOWCTL_CNT_FRAGMENTS);
	c = every_packet ? bpf_map_lookup_elem(&conn_scratch, &zero) : NULL;
	if (c) {
		__builtin_memset(c, 0, sizeof(*c));
		c->dir0.packets = 1;
		c->dir0.bytes = p->payload_len;
		c->verdict = FLOWCTL_VERDICT_FORWARDED;
		c->opener = FLOWCTL_OPENER_GUESSED;
		c->identity[0] = lookup_identity(p->src, p->ip_version);
		c->identity[1] = lookup_identity(p->dst, p->ip_version);
		emit(skb, p, c, EMIT_HOW(0, obs, FLOWCTL_REASON_SAMPLE, FLOWCTL_L7_NONE));
	}
	return TC_ACT_OK;
}

/* The slow path: every packet the fast path did not take. */
__noinline int handle_slow(struct __sk_buff *skb, __u32 obs)
{
	struct flowctl_conn_key k = {};
	struct flowctl_conn *c;
	struct pkt p = {};
	__u32 zero = 0;
	__u16 sp, dp;
	int r, side, reuse = 0;

	count(FLOWCTL_CNT_PACKETS);
	r = parse_packet(skb, &p);
	if (r == PARSE_NOT_IP) {
		count(FLOWCTL_CNT_NON_IP);
		return TC_ACT_OK;
	}
	if (r == PARSE_MALFORMED) {
		count(FLOWCTL_CNT_MALFORMED);
		return TC_ACT_OK;
	}
	if (r == PARSE_FRAGMENT)
		return fragment(skb, &p, obs);

	sp = p.key_id ? p.key_id : p.sport;
	dp = p.key_id ? p.key_id : p.dport;
	r = addr_cmp(p.src, p.dst);
	side = r > 0 || (r == 0 && sp > dp);
	__builtin_memcpy(k.addr[0], side ? p.dst : p.src, 16);
	__builtin_memcpy(k.addr[1], side ? p.src : p.dst, 16);
	k.port[0] = side ? dp : sp;
	k.port[1] = side ? sp : dp;
	k.ifindex = skb->ifindex;
	k.proto = p.proto;
	k.ip_version = p.ip_version;

	c = conn_find(&k);
	/* A SYN on a closed connection's tuple starts a new connection (port reuse). */
	if (c && (c->state & FLOWCTL_STATE_CLOSED) && (p.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		c = NULL;
		reuse = 1;
	}
	if (!c) {
		if (budget_spent(&k, &p, opener_of(&p, side) & 1))
			return suppressed(&k, &p, side, obs, skb->len);
		r = new_conn(&k, &p, side, reuse);
		c = r < 0 ? NULL : conn_find(&k);
		if (!c) {
			/* Not stored: account in the scratch copy new_conn prepared. */
			count(FLOWCTL_CNT_FLOW_MAP_FULL);
			c = bpf_map_lookup_elem(&conn_scratch, &zero);
			if (!c)
				return TC_ACT_OK;
		}
	}
	return account(skb, &p, c, &k, side, obs, config_epoch());
}

/* The TCP or UDP header of a packet the fast path takes: whole in the linear area, inside the
 * IP payload of `l4_len` bytes. */
struct fast_l4 {
	__u32 payload_len; /* L4 payload bytes (of the whole GSO packet) */
	__u16 sport; /* host order */
	__u16 dport;
	__u16 flags; /* TCP flags, NS in bit 8; 0 for UDP */
};

static __always_inline int fast_l4(const __u8 *l4, void *end, __u8 proto, __u32 l4_len, struct fast_l4 *h)
{
	__u32 hlen;

	if (proto == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > end)
			return -1;
		hlen = (l4[12] >> 4) * 4;
		if (hlen < 20)
			return -1;
		h->flags = l4[13] | ((__u16)(l4[12] & 1) << 8);
	} else if (proto == IPPROTO_UDP) {
		if ((void *)(l4 + 8) > end)
			return -1;
		hlen = 8;
		h->flags = 0;
	} else {
		return -1;
	}
	if (l4_len < hlen)
		return -1;
	h->sport = ((__u16)l4[0] << 8) | l4[1];
	h->dport = ((__u16)l4[2] << 8) | l4[3];
	h->payload_len = l4_len - hlen;
	return 0;
}

/* The one check of the fast path: the connection's skip record allows this packet (its side,
 * payload and flags, in the record's jiffy and config epoch). Then it only adds to the counters:
 * this CPU's counts of its slot (`counts`: 1 + index, see struct conn_counts), or the entry's
 * (a connection in an LRU map). */
static __always_inline int fast_account(struct flowctl_conn *c, __u32 counts, __u32 side,
					const struct fast_l4 *h)
{
	struct flowctl_conn_dir *d;
	const struct conn_skip *r;
	struct conn_counts *v;
	__u32 idx = counts - 1;

	if (!c)
		return -1;
	r = &c->skip;
	if (!(r->mask & ((h->payload_len ? SKIP_PAYLOAD0 : SKIP_BARE0) << side)) || (h->flags & ~r->flags[side]))
		return -1;
	if (r->jiffies != bpf_jiffies64() || r->epoch != config_epoch())
		return -1;
	v = counts ? bpf_map_lookup_elem(&conn_counts, &idx) : NULL;
	if (v) {
		v->packets[side] += 1;
		v->bytes[side] += h->payload_len;
	} else {
		d = conn_dir(c, side);
		__sync_fetch_and_add(&d->packets, 1);
		__sync_fetch_and_add(&d->bytes, h->payload_len);
	}
	count(FLOWCTL_CNT_PACKETS);
	return TC_ACT_OK;
}

/* IPv4 fast path: TCP or UDP without IP options, not a fragment. */
static __always_inline int fast4(struct __sk_buff *skb, void *data, void *end)
{
	struct flowctl_conn4_key k = {};
	struct flowctl_conn *c;
	struct fast_l4 h;
	__u8 *ip = data + ETH_HLEN;
	__u32 saddr, daddr, tot, side, counts;

	if ((void *)(ip + 20) > end || ip[0] != 0x45 ||
	    ((((__u32)ip[6] << 8) | ip[7]) & (IPV4_FRAG_MF | IPV4_FRAG_OFFSET)))
		return -1;
	tot = ((__u32)ip[2] << 8) | ip[3];
	if (tot < 20 || tot > skb->len - ETH_HLEN || fast_l4(ip + 20, end, ip[9], tot - 20, &h))
		return -1;
	/* Canonical order as handle_slow's: addresses as loaded, then ports. Word loads from the
	 * packet need no alignment: the verifier allows them where the CPU does. */
	saddr = *(const __u32 *)(ip + 12);
	daddr = *(const __u32 *)(ip + 16);
	side = saddr > daddr || (saddr == daddr && h.sport > h.dport);
	k.addr[0] = side ? daddr : saddr;
	k.addr[1] = side ? saddr : daddr;
	k.port[0] = side ? h.dport : h.sport;
	k.port[1] = side ? h.sport : h.dport;
	k.ifindex = skb->ifindex;
	k.proto = ip[9];
	c = conn4_find(&k, &counts);
	return fast_account(c, counts, side, &h);
}

/* IPv6 fast path: TCP or UDP right after the fixed header (no extension headers). */
static __always_inline int fast6(struct __sk_buff *skb, void *data, void *end)
{
	struct flowctl_conn_key k = {};
	struct flowctl_conn *c;
	struct fast_l4 h;
	__u8 *ip = data + ETH_HLEN;
	const __u32 *src, *dst;
	__u32 len, side, counts;
	int r, i;

	if ((void *)(ip + 40) > end || (ip[0] >> 4) != 6)
		return -1;
	len = ((__u32)ip[4] << 8) | ip[5];
	if (len > skb->len - ETH_HLEN - 40 || fast_l4(ip + 40, end, ip[6], len, &h))
		return -1;
	/* Word loads from the packet, as in fast4. */
	src = (const __u32 *)(ip + 8);
	dst = (const __u32 *)(ip + 24);
	r = addr_cmp(src, dst);
	side = r > 0 || (r == 0 && h.sport > h.dport);
	for (i = 0; i < 4; i++) {
		k.addr[0][i] = side ? dst[i] : src[i];
		k.addr[1][i] = side ? src[i] : dst[i];
	}
	k.port[0] = side ? h.dport : h.sport;
	k.port[1] = side ? h.sport : h.dport;
	k.ifindex = skb->ifindex;
	k.proto = ip[6];
	k.ip_version = 6;
	c = conn6_find(&k, &counts);
	return fast_account(c, counts, side, &h);
}

static __always_inline int handle(struct __sk_buff *skb, __u32 obs)
{
	void *data = skb_data(skb), *end = skb_data_end(skb);
	__u8 *eth = data;
	__u16 proto;
	int r = -1;

	if ((void *)(eth + ETH_HLEN) <= end) {
		proto = ((__u16)eth[12] << 8) | eth[13];
		if (proto == ETH_P_IP)
			r = fast4(skb, data, end);
		else if (proto == ETH_P_IPV6)
			r = fast6(skb, data, end);
	}
	if (r >= 0)
		return r;
	r = handle_slow(skb, obs);
	if (r & L7_PENDING)
		l7_http_emit(skb);
	return r & 0xff;
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
