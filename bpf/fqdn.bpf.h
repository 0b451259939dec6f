/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* toFQDNs in the datapath. Learning: a DNS answer (UDP, or TCP: see fqdn_answer) on its way to an
 * endpoint whose egress has toFQDNs rules is parsed here, before the endpoint gets it; when its
 * question name matches a selector (by the hashes user space writes into fqdn_names: the whole
 * name, the name after its first label, or any name; or by a pattern in fqdn_globs), its A/AAAA
 * addresses are stored per endpoint in fqdn_ips. So the first connection after the answer finds its address learned: no race with
 * user space, no proxy. Deciding: an egress connection that no policy row matched (default deny)
 * to an address outside the cluster is allowed when the endpoint learned that address through a
 * selector whose rows allow it. User space expires entries (TTL, at least the minimum) and sets
 * per-name limits.
 * Only DNS answers pay for this: they always take the slow path. */
#ifndef __FLOWCTL_FQDN_BPF_H
#define __FLOWCTL_FQDN_BPF_H

#define DNS_BUF 512          /* answers are parsed in their first 512 bytes */
#define DNS_MAX_RRS 16       /* answer records looked at */
#define DNS_MAX_LABELS 64    /* labels of an owner name walked over */
#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL
#define MIN_CIDR_IDENTITY (1U << 24)

/* Seconds an address stays learned at least (--tofqdns-min-ttl). */
const volatile __u32 fqdn_min_ttl_s = 3600;

/* Trying the selectors an address was learned through. */
struct fqdn_try {
	struct flowctl_policy_key key; /* here, not on the stack: evaluate's callers use most of it */
	__u64 bits;
	__u32 rule_ref;
	__u16 port;
	__u8 proto;
	__u8 allowed;
};

/* The answer and the parser's state, per CPU. The state lives here, not on the stack, so the
 * verifier does not follow its values: each bpf_loop callback is verified once, not once per
 * position in the name. */
struct dns_buf {
	__u8 b[DNS_BUF];
	__u64 h, h1;   /* the question name's hash, and that of the name after its first label */
	__u64 bits;    /* selectors the question matches */
	__u32 pos, next, first_end, len;
	__u32 len_name; /* of name */
	__u32 end;     /* past the question name's root byte; 0: not parsed */
	__u32 gi, gp, gn, gstar, gmark; /* glob_step's: pattern, its position, the name's, backtrack */
	__u8 name[256]; /* the question name, dotted, lower case (a '.' inside a label: 0xff) */
	__u32 learned; /* addresses new to the endpoint */
	__u32 has_other; /* the endpoint has an address of the other family: `other` */
	struct flowctl_fqdn_peer_key self; /* the endpoint's address the answer goes to */
	struct flowctl_fqdn_peer other;
	struct flowctl_fqdn_ip_key k;
	struct flowctl_fqdn_ip_value fresh; /* a new address's value */
	struct fqdn_try t; /* fqdn_verdict's */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_buf);
} dns_scratch SEC(".maps");

/* struct flowctl_fqdn_name_key -> __u64 selector bits (written by user space) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct flowctl_fqdn_name_key);
	__type(value, __u64);
} fqdn_names SEC(".maps");

/* index -> struct flowctl_fqdn_glob (written by user space) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct flowctl_fqdn_glob);
} fqdn_globs SEC(".maps");

/* struct flowctl_fqdn_ip_key -> struct flowctl_fqdn_ip_value (learned here, expired by user space) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowctl_fqdn_ip_key);
	__type(value, struct flowctl_fqdn_ip_value);
} fqdn_ips SEC(".maps");

/* struct flowctl_fqdn_peer_key -> struct flowctl_fqdn_peer (written by user space) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct flowctl_fqdn_peer_key);
	__type(value, struct flowctl_fqdn_peer);
} fqdn_peers SEC(".maps");

static __always_inline __u64 fqdn_bits(__u64 hash, __u32 kind)
{
	struct flowctl_fqdn_name_key k = { .hash = hash, .kind = kind };
	__u64 *v = bpf_map_lookup_elem(&fqdn_names, &k);

	return v ? *v : 0;
}

static __always_inline struct dns_buf *dns_buf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dns_scratch, &zero);
}

/* One byte of the question name. */
static long qname_step(__u64 i, void *ctx)
{
	struct dns_buf *d = dns_buf();
	__u32 pos;
	__u8 c;

	if (!d || d->pos >= d->len)
		return 1;
	pos = d->pos;
	c = d->b[pos & (DNS_BUF - 1)];
	if (pos == d->next) {
		if (c == 0) {
			d->end = pos + 1;
			return 1;
		}
		if (c > 63)
			return 1;
		d->next = pos + 1 + c;
		if (!d->first_end)
			d->first_end = d->next;
		else
			d->name[(pos - 13) & 255] = '.';
	} else {
		c |= (__u8)((__u8)(c - 'A') < 26) << 5; /* lower case */
		d->name[(pos - 13) & 255] = c == '.' ? 0xff : c;
	}
	d->h = (d->h ^ c) * FNV64_PRIME;
	if (pos >= d->first_end)
		d->h1 = (d->h1 ^ c) * FNV64_PRIME;
	d->pos = pos + 1;
	return 0;
}

#define GLOB_NONE 0xffffffffU
#define GLOB_STEPS 16384 /* steps for all patterns of one answer; past them, user space's match */

/* What a `*` matches: DNS name characters but '.' (Cilium's [-a-zA-Z0-9_]; the name is lower case). */
static __always_inline int glob_char(__u8 c)
{
	return (__u8)(c - 'a') < 26 || (__u8)(c - '0') < 10 || c == '-' || c == '_';
}

/* One step of matching the question name against pattern gi of fqdn_globs: the usual wildcard
 * match that backtracks to the last `*` only, which is exact here as `*` never crosses a '.'. */
static long glob_step(__u64 i, void *ctx)
{
	struct dns_buf *d = dns_buf();
	struct flowctl_fqdn_glob *g;
	__u32 key, p, n;
	__u8 pc;

	if (!d)
		return 1;
	key = d->gi;
	g = bpf_map_lookup_elem(&fqdn_globs, &key);
	if (!g || !g->len)
		return 1;
	p = d->gp;
	n = d->gn;
	pc = p < g->len ? g->pat[p & 255] : 0;
	if (n < d->len_name) {
		if (pc == '*') {
			d->gstar = p;
			d->gmark = n;
			d->gp = p + 1;
			return 0;
		}
		if (pc && pc == d->name[n & 255]) {
			d->gp = p + 1;
			d->gn = n + 1;
			return 0;
		}
		if (d->gstar != GLOB_NONE && glob_char(d->name[d->gmark & 255])) {
			d->gn = ++d->gmark;
			d->gp = d->gstar + 1;
			return 0;
		}
	} else if (pc == '*') {
		d->gp = p + 1;
		return 0;
	} else if (p == g->len) {
		d->bits |= g->bits;
	}
	d->gi = key + 1;
	d->gp = d->gn = d->gmark = 0;
	d->gstar = GLOB_NONE;
	return 0;
}

/* Offset past the owner name of a record at pos (labels, ending in a root byte or a pointer),
 * or 0. A function of its own: its exits would otherwise multiply the paths of its caller. */
__noinline __u32 dns_skip_name(__u32 pos, __u32 len)
{
	struct dns_buf *d = dns_buf();
	__u8 c;
	int i;

	if (!d)
		return 0;
	for (i = 0; i < DNS_MAX_LABELS; i++) {
		if (pos >= len)
			return 0;
		c = d->b[pos & (DNS_BUF - 1)];
		if (c == 0)
			return pos + 1;
		if ((c & 0xc0) == 0xc0)
			return pos + 2;
		if (c > 63)
			return 0;
		pos += 1 + c;
	}
	return 0;
}

static __always_inline __u32 be16_at(const struct dns_buf *d, __u32 pos)
{
	return ((__u32)d->b[pos & (DNS_BUF - 1)] << 8) | d->b[(pos + 1) & (DNS_BUF - 1)];
}

/* Stores one learned address; returns 1 when the endpoint did not know it through these
 * selectors yet (cached verdicts must then be looked at again). */
static __always_inline int fqdn_learn(struct dns_buf *d, __u32 ttl)
{
	struct flowctl_fqdn_ip_value *v;
	__u64 expires, bits = d->bits;

	if (ttl < fqdn_min_ttl_s)
		ttl = fqdn_min_ttl_s;
	expires = bpf_ktime_get_ns() + (__u64)ttl * 1000000000ULL;
	v = bpf_map_lookup_elem(&fqdn_ips, &d->k);
	if (v) {
		if (v->expires_ns < expires)
			v->expires_ns = expires;
		v->name_hash = d->h;
		if (!(bits & ~v->selectors))
			return 0;
		__sync_fetch_and_or(&v->selectors, bits);
		return 1;
	}
	d->fresh.expires_ns = expires;
	d->fresh.selectors = bits;
	d->fresh.name_hash = d->h;
	bpf_map_update_elem(&fqdn_ips, &d->k, &d->fresh, BPF_ANY);
	return 1;
}

/* One answer record: learns its address for the endpoint's address of the record's family (the one
 * the answer went to, or the other one of a dual-stack endpoint). */
static long answer_step(__u64 i, void *ctx)
{
	struct dns_buf *d = dns_buf();
	__u32 pos, type, class, rdlen, ttl, n, j;

	if (!d)
		return 1;
	pos = dns_skip_name(d->pos, d->len);
	if (!pos || pos + 10 > d->len)
		return 1;
	type = be16_at(d, pos);
	class = be16_at(d, pos + 2);
	ttl = (be16_at(d, pos + 4) << 16) | be16_at(d, pos + 6);
	rdlen = be16_at(d, pos + 8);
	pos += 10;
	if (pos + rdlen > d->len)
		return 1;
	d->pos = pos + rdlen;
	if (class != 1 || !((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)))
		return 0;
	n = rdlen;
	if ((n == 4 ? 4 : 6) == d->self.family)
		__builtin_memcpy(d->k.endpoint, d->self.addr, 16);
	else if (d->has_other)
		__builtin_memcpy(d->k.endpoint, d->other.addr, 16);
	else
		return 0;
	d->k.family = n == 4 ? 4 : 6;
#pragma unroll
	for (j = 0; j < 16; j++)
		((__u8 *)d->k.addr)[j] = j < n ? d->b[(pos + j) & (DNS_BUF - 1)] : 0;
	d->learned += fqdn_learn(d, ttl);
	return 0;
}

/* Parses the DNS answer in p (to an endpoint whose egress has toFQDNs rules) and learns its
 * addresses when its question matches a selector. Returns how many addresses were new. Over TCP,
 * only a segment that begins a message (its 2-byte length) and holds all of it: an answer split
 * over segments is left to user space's parse. */
__noinline int fqdn_answer(struct __sk_buff *skb, const struct pkt *p)
{
	struct dns_buf *d = dns_buf();
	struct flowctl_fqdn_peer *other;
	__u32 zero = 0, len, count, off;
	int unused = 0;

	if (!d || !p || p->payload_len < 12)
		return 0;
	off = p->payload_off;
	len = p->payload_len;
	if (p->proto == IPPROTO_TCP) {
		if (len < 14 || bpf_skb_load_bytes(skb, off, d->b, 2))
			return 0;
		count = be16_at(d, 0);
		if (count + 2 > len)
			return 0;
		off += 2;
		len = count;
	} else if (p->proto != IPPROTO_UDP) {
		return 0;
	}
	if (len > DNS_BUF)
		len = DNS_BUF;
	asm volatile("%0 &= 0x3ff" : "+r"(len));
	if (len > DNS_BUF || len < 12 || bpf_skb_load_bytes(skb, off, d->b, len))
		return 0;
	/* A response (QR), no error, one question. */
	if (!(d->b[2] & 0x80) || (d->b[3] & 0x0f) || be16_at(d, 4) != 1)
		return 0;
	d->len = len;
	d->pos = d->next = 12;
	d->first_end = d->end = d->learned = 0;
	d->h = d->h1 = FNV64_OFFSET;
	bpf_loop(256, qname_step, &unused, 0);
	if (!d->end)
		return 0;
	d->bits = fqdn_bits(d->h, FLOWCTL_FQDN_NAME) | fqdn_bits(d->h1, FLOWCTL_FQDN_LABEL) |
		  fqdn_bits(0, FLOWCTL_FQDN_ANY);
	d->len_name = d->end - 14;
	d->gi = d->gp = d->gn = d->gmark = 0;
	d->gstar = GLOB_NONE;
	if (d->end > 14)
		bpf_loop(GLOB_STEPS, glob_step, &unused, 0);
	if (!d->bits)
		return 0;
	d->pos = d->end + 4; /* qtype, qclass */
	d->self.family = p->ip_version;
	__builtin_memcpy(d->self.addr, p->dst, 16);
	other = bpf_map_lookup_elem(&fqdn_peers, &d->self);
	d->has_other = other != NULL;
	if (other)
		__builtin_memcpy(d->other.addr, other->addr, 16);
	count = be16_at(d, 6);
	if (count > DNS_MAX_RRS)
		count = DNS_MAX_RRS;
	bpf_loop(count, answer_step, &unused, 0);
	if (d->learned) {
		struct flowctl_config *cfg = bpf_map_lookup_elem(&config, &zero);

		/* A connection denied before (same tuple) must be looked at again. */
		if (cfg)
			__sync_fetch_and_add(&cfg->epoch, 1);
	}
	return d->learned;
}

/* Whether DNS answers to `endpoint` teach it addresses. */
static __always_inline int fqdn_endpoint(__u32 endpoint)
{
	__u32 *bits = bpf_map_lookup_elem(&policy_enforce, &endpoint);

	return bits && (*bits & FLOWCTL_ENFORCE_FQDN);
}

static long fqdn_try_step(__u64 i, void *ctx)
{
	struct dns_buf *d = dns_buf();
	struct flowctl_policy_value *v;
	struct fqdn_try *t;

	if (!d)
		return 1;
	t = &d->t;
	if (!(t->bits >> (i & 63)))
		return 1;
	if (!((t->bits >> (i & 63)) & 1))
		return 0;
	/* The selector's rows in policy_decide's order; the peer-0 rows missed already. */
	t->key.peer_identity = FLOWCTL_FQDN_IDENTITY + (__u32)i;
	t->key.port = t->port;
	t->key.proto = t->proto;
	v = bpf_map_lookup_elem(&policy, &t->key);
	if (!v && t->port) {
		t->key.port = 0;
		v = bpf_map_lookup_elem(&policy, &t->key);
	}
	if (!v) {
		t->key.port = 0;
		t->key.proto = 0;
		v = bpf_map_lookup_elem(&policy, &t->key);
	}
	if (!v || v->deny)
		return 0;
	t->rule_ref = v->rule_ref;
	t->allowed = 1;
	return 1;
}

/* After evaluate: a connection opened by an endpoint with toFQDNs rules, denied by default (no
 * row) to an address outside the cluster, is allowed when the endpoint learned that address
 * through a selector with an allow row for it; else it stays denied in the name of the endpoint's
 * first policy with toFQDNs rules, so the drop says which policy stopped it. Not in evaluate:
 * its callers' frames leave no room for this one. */
static __always_inline void fqdn_verdict(struct flowctl_conn *c, const struct flowctl_conn_key *k)
{
	struct dns_buf *b;
	struct flowctl_fqdn_ip_value *v;
	__u32 o = c->opener & 1, endpoint, peer, *bits;
	__u16 port;
	int unused = 0;

	if (c->verdict == FLOWCTL_VERDICT_FORWARDED || c->policy_ref ||
	    c->policy_direction != FLOWCTL_DIR_EGRESS)
		return;
	endpoint = c->identity[o];
	peer = c->identity[o ^ 1];
	if (peer != IDENTITY_WORLD && peer < MIN_CIDR_IDENTITY)
		return;
	bits = bpf_map_lookup_elem(&policy_enforce, &endpoint);
	b = dns_buf();
	if (!bits || !(*bits & FLOWCTL_ENFORCE_FQDN) || !b)
		return;
	c->policy_ref = *bits >> 8;
	/* The key in the per-CPU scratch: the slow path's frame is large. */
	b->k.family = k->ip_version;
	if (o) {
		__builtin_memcpy(b->k.endpoint, k->addr[1], 16);
		__builtin_memcpy(b->k.addr, k->addr[0], 16);
		port = k->port[0];
	} else {
		__builtin_memcpy(b->k.endpoint, k->addr[0], 16);
		__builtin_memcpy(b->k.addr, k->addr[1], 16);
		port = k->port[1];
	}
	v = bpf_map_lookup_elem(&fqdn_ips, &b->k);
	if (!v || v->expires_ns < bpf_ktime_get_ns())
		return;
	__builtin_memset(&b->t.key, 0, sizeof(b->t.key));
	b->t.key.endpoint_identity = endpoint;
	b->t.key.direction = FLOWCTL_DIR_EGRESS;
	b->t.bits = v->selectors;
	b->t.port = (k->proto == IPPROTO_ICMP || k->proto == 58) ? 0 : port;
	b->t.proto = k->proto;
	b->t.allowed = 0;
	bpf_loop(64, fqdn_try_step, &unused, 0);
	if (b->t.allowed) {
		c->verdict = FLOWCTL_VERDICT_FORWARDED;
		c->policy_ref = b->t.rule_ref;
		c->drop_reason = 0;
	}
}

#endif /* __FLOWCTL_FQDN_BPF_H */
