/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* L7 in the TC datapath: which payloads reach user space, and how much of them.
 *
 * DNS and HTTP/1.x payloads of a connection direction are sent from one observation point
 * (l7_owners). For HTTP the kernel also follows the direction's messages from its first byte, by
 * Content-Length framing read from each message head, so that a message starting anywhere in a
 * segment (GSO: up to 64 KB) gets its bytes copied: a segment is sent as up to L7_WINDOWS windows
 * (events), the first at the segment's first byte or the first message start in it, the next
 * ones at the next message start or head byte past the previous window. A segment that comes
 * before the bytes ahead of it waits in a stash for them (l7_stash); bytes sent before
 * (retransmissions) are not sent again. User space parses the messages itself, and uses the
 * kernel's starts only to find its place again after bytes it never got, once the kernel's starts
 * have matched its own. Whatever the kernel cannot frame as user
 * space does for certain (chunked or no length, a head over L7_MAX_HEAD bytes, a header name with
 * spaces, a repeated Content-Length, HEAD and CONNECT requests, upgrades) ends the following of
 * that direction until its next connection. */
#ifndef __FLOWCTL_L7_BPF_H
#define __FLOWCTL_L7_BPF_H

/* struct l7_dir.mode */
#define L7_UNKNOWN 0 /* not followed */
#define L7_AT 1      /* the next message starts at `next` */
#define L7_HEAD 2    /* inside a message head, which continues at `next` */

/* struct l7_dir.hdr: what the current head line may still be. */
#define H_CL 1    /* content-length */
#define H_TE 2    /* transfer-encoding */
#define H_UP 4    /* upgrade */
#define H_NAMES 7 /* at a header name */
#define H_VALUE 8 /* in Content-Length's value */

/* struct l7_dir.flags */
#define F_CL 1
#define F_DIGITS 2
#define F_TRAIL 4
#define F_TE 8
#define F_UPGRADE 16
#define F_BAD 32

#define L7_MAX_HEAD 8192
#define L7_MAX_BODY (1U << 30)
#define L7_WINDOWS 8
#define L7_NONE (~0U)
#define L7_PENDING 0x100 /* with the slow path's TC action: an HTTP segment to send */

/* One direction of a connection: who sends its payloads, and where its messages are. */
struct l7_dir {
	__u32 ifindex; /* the interface that sends the direction's payloads */
	__u32 next;    /* a sequence number, see `mode` */
	__u32 msgs;    /* messages started before `next` (interim 1xx responses not counted) */
	__u32 len;     /* bytes of the current head read */
	__u32 cl;      /* its Content-Length */
	__u32 last;    /* its last four bytes */
	__u16 col;     /* bytes of the current header name read */
	__u8 mode;     /* L7_* */
	__u8 hdr;      /* H_* */
	__u8 flags;    /* F_* */
	__u8 first[12]; /* the head's first bytes: its request or status line */
	__u8 sent;      /* a segment was sent: `hi` holds */
	__u8 pad[2];
	__u32 hi;       /* the bytes sent from the first on without a hole end here (l7_sent) */
	__u32 lo2, hi2; /* and one run sent past a hole; none when equal */
	__u32 busy;     /* a CPU is reading a segment of the direction (l7_hold) */
};

/* The canonical connection key with `ifindex` holding the side -> the direction. The first
 * interface to see a payload takes the direction, so user space decodes each segment once;
 * forgotten at the side's SYN. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowctl_conn_key);
	__type(value, struct l7_dir);
} l7_owners SEC(".maps");

/* A window being read (l7_step). */
struct l7_scan {
	__u32 seq;       /* sequence number of the window's first byte */
	__u32 n;         /* its bytes */
	__u32 i;         /* the next one to read */
	__u16 req, resp; /* messages started in it, by kind */
	__u32 head;      /* a HEAD or CONNECT request was read: its response cannot be framed */
};

/* Per CPU: a key and a new entry, off the slow path's nearly full stack; the direction being read
 * and the window, here so that the verifier does not follow their values (each bpf_loop
 * callback is verified once, as in fqdn.bpf.h). */
struct l7_scratch {
	struct flowctl_conn_key k;
	struct l7_dir fresh;
	struct l7_dir d;
	struct l7_scan s;
	__u32 off;  /* the pending segment's payload offset in its skb (l7_pending) */
	__u32 side; /* and direction */
	__u32 src;  /* where l7_window reads the segment's bytes: 0 the skb, else stash slot + 1 */
	__u32 again; /* the segment's bytes were all sent before (l7_segment) */
	__u32 loose; /* l7_segment sends the segment unfollowed and leaves the direction's state */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7_scratch);
} l7_scratch SEC(".maps");

/* A followed direction's segment that came before the bytes ahead of it (veth hands a sender's
 * segments to per-CPU backlogs, so TC can see them out of order): kept here until those bytes
 * pass, then read as if it came in order. One slot per direction (by hash); a busy slot leaves the
 * segment unfollowed, as does one older than L7_STASH_NS (flushed by the next segment of a
 * direction with its slot). */
#define L7_STASH_SLOTS 16
#define L7_STASH_MAX 65536
#define L7_STASH_NS 1000000000ULL
#define S_EMPTY 0
#define S_FILLING 1
#define S_READY 2
#define S_TAKEN 3

struct l7_stash {
	__u64 hdr[FLOWCTL_FLOW_EVENT_HDR_LEN / 8]; /* the segment's event */
	struct flowctl_conn_key k;                  /* its direction (l7_x) */
	__u32 state;                                /* S_* */
	__u8 data[L7_STASH_MAX + FLOWCTL_MAX_PAYLOAD]; /* its payload, and room for a window's read */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L7_STASH_SLOTS);
	__type(key, __u32);
	__type(value, struct l7_stash);
} l7_stash SEC(".maps");

static __always_inline struct l7_scratch *l7_x(const struct flowctl_conn_key *k, __u32 side)
{
	__u32 zero = 0;
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);

	if (x && k) {
		x->k = *k;
		x->k.ifindex = side;
	}
	return x;
}

static __always_inline int match4(const __u8 *b, const char *s)
{
	return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3];
}

/* HTTP/1.x by the start of a request line or a status line, from the first 8 payload bytes. */
static __always_inline int is_http(const __u8 *b)
{
	if (match4(b, "GET ") || match4(b, "POST") || match4(b, "PUT ") || match4(b, "HEAD") ||
	    match4(b, "DELE") || match4(b, "PATC") || match4(b, "OPTI") || match4(b, "CONN") ||
	    match4(b, "TRAC"))
		return 1;
	return match4(b, "HTTP") && b[4] == '/' && b[5] == '1' && b[6] == '.';
}

static __always_inline int is_dns(__u8 proto, __u16 port0, __u16 port1)
{
	return (port0 == 53 || port1 == 53) && (proto == IPPROTO_UDP || proto == IPPROTO_TCP);
}

/* L7 owns which payloads reach the slow path and which of them are sent to user space. This says
 * whether the payloads of direction `side` of a connection (ports in either order) must reach
 * the slow path: DNS always; TCP until the direction's first payload proved not to be HTTP. */
static __always_inline int l7_watches(const struct flowctl_conn *c, __u8 proto, __u16 port0,
				      __u16 port1, int side)
{
	if (is_dns(proto, port0, port1))
		return 1;
	return proto == IPPROTO_TCP && !(c->state & (FLOWCTL_STATE_NOHTTP0 << side));
}

/* Whether interface `me` sends direction `side`'s L7 payloads (struct l7_dir). */
__noinline int l7_here(__u32 me, const struct flowctl_conn_key *k, __u32 side)
{
	struct l7_scratch *x = l7_x(k, side);
	struct l7_dir *d;

	if (!x)
		return 0;
	d = bpf_map_lookup_elem(&l7_owners, &x->k);
	if (d)
		return d->ifindex == me;
	__builtin_memset(&x->fresh, 0, sizeof(x->fresh));
	x->fresh.ifindex = me;
	if (!bpf_map_update_elem(&l7_owners, &x->k, &x->fresh, BPF_NOEXIST))
		return 1;
	d = bpf_map_lookup_elem(&l7_owners, &x->k);
	return d && d->ifindex == me;
}

/* A SYN: the direction starts anew (how: `side`, or 2 + `side` to follow its HTTP messages
 * from sequence number `seq`, its first payload). */
__noinline int l7_begin(const struct flowctl_conn_key *k, __u32 how, __u32 seq)
{
	struct l7_scratch *x = l7_x(k, how & 1);
	struct l7_dir *d;

	if (!x)
		return 0;
	if (!(how & 2))
		return bpf_map_delete_elem(&l7_owners, &x->k);
	d = bpf_map_lookup_elem(&l7_owners, &x->k);
	if (!d)
		return 0;
	d->next = seq;
	d->msgs = 0;
	d->mode = L7_AT;
	return 1;
}

/* And this which L7 protocol a watched packet's payload is sent as (FLOWCTL_L7_NONE: not sent),
 * noting per direction whether it is HTTP: its first payload decides, and the kernel follows its
 * messages when it also saw the direction's SYN. A direction that started as HTTP sends every
 * payload segment, for user space to follow its messages by sequence number. Another interface's
 * direction is marked not HTTP here, so its payloads skip the slow path. */
static __always_inline __u8 l7_of(struct __sk_buff *skb, const struct pkt *p, struct flowctl_conn *c,
				  const struct flowctl_conn_key *k, int side)
{
	__u32 seen = FLOWCTL_STATE_HTTP0 << side;
	__u8 b[8];
	int http;

	if (p->tcp_flags & TCP_SYN)
		l7_begin(k, side, 0);
	if (!p->payload_len || !l7_watches(c, p->proto, p->sport, p->dport, side))
		return FLOWCTL_L7_NONE;
	if (is_dns(p->proto, p->sport, p->dport))
		return l7_here(skb->ifindex, k, side) ? FLOWCTL_L7_DNS : FLOWCTL_L7_NONE;
	if (!l7_here(skb->ifindex, k, side)) {
		__sync_fetch_and_or(&c->state, FLOWCTL_STATE_NOHTTP0 << side);
		return FLOWCTL_L7_NONE;
	}
	if (c->state & seen)
		return FLOWCTL_L7_HTTP;
	if (p->payload_len < 8 || bpf_skb_load_bytes(skb, p->payload_off, b, 8))
		return FLOWCTL_L7_NONE;
	http = is_http(b);
	if (!(__sync_fetch_and_or(&c->state, http ? seen : (FLOWCTL_STATE_NOHTTP0 << side)) & seen) && http &&
	    (c->flags_seen[side] & TCP_SYN))
		l7_begin(k, 2 + side, p->tcp_seq);
	return http ? FLOWCTL_L7_HTTP : FLOWCTL_L7_NONE;
}

/* Counts the messages an L7 event lost to a full ring carried, by the start they can be seen by:
 * a segment starting with a request or status line, or a DNS segment (user space counts the same
 * way in the streams it can no longer follow: docs/flows.md). */
static __always_inline void l7_lost(const __u8 *b, __u32 n, __u8 l7)
{
	if (l7 == FLOWCTL_L7_DNS)
		count(FLOWCTL_CNT_L7_LOST_DNS);
	else if (l7 == FLOWCTL_L7_HTTP && n >= 8 && is_http(b))
		count(b[0] == 'H' && b[1] == 'T' ? FLOWCTL_CNT_L7_LOST_HTTP_RESP : FLOWCTL_CNT_L7_LOST_HTTP_REQ);
}

/* The end of a head, at sequence number `end`: where the next message starts, or L7_UNKNOWN.
 * Returns 1 for a HEAD or CONNECT request. Functions of their own (this and l7_head_byte): each
 * is verified once, not once per path through the window loop. */
__noinline int l7_head_end(struct l7_dir *d, __u32 end)
{
	const __u8 *f;
	__u32 body = 0, code, head = 0;
	__u8 fl;

	if (!d)
		return 0;
	f = d->first;
	fl = d->flags;
	d->mode = L7_UNKNOWN;
	if (d->len < 16 || !is_http(f) || (fl & (F_BAD | F_TE)))
		return 0;
	if (match4(f, "HTTP")) {
		if (f[8] != ' ' || f[9] < '1' || f[9] > '5' || f[10] < '0' || f[10] > '9' || f[11] < '0' || f[11] > '9')
			return 0;
		code = (f[9] - '0') * 100 + (f[10] - '0') * 10 + (f[11] - '0');
		if (code == 101)
			return 0; /* another protocol follows */
		if (code >= 200 && code != 204 && code != 304) {
			if (!(fl & F_CL))
				return 0;
			body = d->cl;
		}
		if (code >= 200)
			d->msgs++;
	} else {
		head = match4(f, "HEAD") || match4(f, "CONN");
		if (match4(f, "CONN") || (fl & F_UPGRADE))
			return head;
		body = (fl & F_CL) ? d->cl : 0;
		d->msgs++;
	}
	d->mode = L7_AT;
	d->next = end + body;
	return head;
}

const volatile char l7_cl[16] = "content-length", l7_te[18] = "transfer-encoding", l7_up[8] = "upgrade";

/* Byte `c` of a head; returns 1 at its end. Names are matched as user space reads them (lower
 * case, no spaces). */
__noinline int l7_head_byte(struct l7_dir *d, __u32 c)
{
	__u8 h, lc;
	__u16 col;

	if (!d)
		return 0;
	h = d->hdr;
	col = d->col;
	d->last = d->last << 8 | c;
	if (d->len < sizeof(d->first))
		d->first[d->len] = c;
	if (++d->len > L7_MAX_HEAD) {
		d->mode = L7_UNKNOWN;
		return 0;
	}
	if (c == '\n') {
		if ((h & H_VALUE) && !(d->flags & F_DIGITS))
			d->flags |= F_BAD;
		d->hdr = H_NAMES;
		d->col = 0;
		return d->last == 0x0d0a0d0a;
	}
	if (h & H_VALUE) {
		if (c >= '0' && c <= '9' && !(d->flags & F_TRAIL) && d->cl < L7_MAX_BODY / 10) {
			d->cl = d->cl * 10 + (c - '0');
			d->flags |= F_DIGITS;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			if (d->flags & F_DIGITS)
				d->flags |= F_TRAIL;
		} else {
			d->flags |= F_BAD;
		}
		return 0;
	}
	if (!(h & H_NAMES))
		return 0; /* the start line, or another header's value */
	if (c == ':') {
		d->hdr = 0;
		if ((h & H_CL) && col == 14) {
			if (d->flags & F_CL)
				d->flags |= F_BAD;
			d->flags |= F_CL;
			d->hdr = H_VALUE;
		} else if ((h & H_TE) && col == 17) {
			d->flags |= F_TE;
		} else if ((h & H_UP) && col == 7) {
			d->flags |= F_UPGRADE;
		}
		return 0;
	}
	if (c == ' ' || c == '\t') {
		d->flags |= F_BAD;
		return 0;
	}
	lc = c >= 'A' && c <= 'Z' ? c | 0x20 : c;
	if (col >= 14 || lc != l7_cl[col])
		h &= ~H_CL;
	if (col >= 17 || lc != l7_te[col])
		h &= ~H_TE;
	if (col >= 7 || lc != l7_up[col])
		h &= ~H_UP;
	d->hdr = h;
	d->col = col + 1;
	return 0;
}

/* bpf_loop step over a window (struct l7_scratch): one head byte, or a jump to the next message
 * start. */
static long l7_step(__u64 unused, void *ctx)
{
	__u32 zero = 0, i;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_scan *s;
	struct l7_dir *d;
	__s32 gap;

	if (!ev || !x)
		return 1;
	s = &x->s;
	d = &x->d;
	i = s->i;
	if (i >= s->n || i >= FLOWCTL_MAX_PAYLOAD)
		return 1;
	if (d->mode == L7_AT) {
		gap = d->next - (s->seq + i);
		if (gap < 0 || gap >= s->n - i)
			return 1;
		i += gap;
		if (i >= FLOWCTL_MAX_PAYLOAD)
			return 1;
		if (ev->l7_start == L7_NONE) {
			ev->l7_start = ev->captured_off + i;
			ev->l7_msg = d->msgs;
		}
		if (ev->payload[i] == 'H' && (i + 1 >= s->n || ev->payload[(i + 1) & (FLOWCTL_MAX_PAYLOAD - 1)] == 'T'))
			s->resp++;
		else
			s->req++;
		d->mode = L7_HEAD;
		d->len = d->cl = d->last = d->col = d->hdr = d->flags = 0;
		s->i = i;
		return 0;
	}
	if (d->mode != L7_HEAD)
		return 1;
	s->i = i + 1;
	d->next = s->seq + i + 1;
	if (l7_head_byte(d, ev->payload[i]))
		s->head |= l7_head_end(d, s->seq + i + 1);
	return 0;
}

/* Copies `n` bytes of the segment being sent from its payload offset `at` (in the skb: `at` counts
 * from the skb's start) into the event. */
static __always_inline int l7_load(struct __sk_buff *skb, __u32 at, __u32 n)
{
	__u32 zero = 0, slot;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_stash *st;

	if (!ev || !x)
		return -1;
	if (!x->src)
		return bpf_skb_load_bytes(skb, at, ev->payload, n);
	slot = x->src - 1;
	st = bpf_map_lookup_elem(&l7_stash, &slot);
	if (!st)
		return -1;
	return bpf_probe_read_kernel(ev->payload, n, st->data + (at & (L7_STASH_MAX - 1)));
}

/* Sends window [at, ...) of HTTP segment `ev` (in `scratch`, payload at `off` in skb) after
 * reading it; returns the offset of the segment's next window, 0 for none (`last`: there can be
 * no other). A function of its own, verified once rather than once per window. */
__noinline int l7_window(struct __sk_buff *skb, __u32 off, __u32 at, __u32 last)
{
	__u32 zero = 0, n, len;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_dir *o;
	__s32 next;
	int unused = 0;

	if (!ev || !x)
		return 0;
	len = ev->payload_len;
	if (at >= len)
		return 0;
	n = len - at;
	if (n > max_payload) {
		n = max_payload;
		count(FLOWCTL_CNT_L7_TRUNCATED);
	}
	asm volatile("%0 &= 0x7ff" : "+r"(n)); /* as in emit */
	if (n > FLOWCTL_MAX_PAYLOAD)
		n = FLOWCTL_MAX_PAYLOAD;
	if (n > 0 && l7_load(skb, off + at, n))
		n = 0;
	ev->captured_off = at;
	ev->captured_len = n;
	ev->l7_start = L7_NONE;
	ev->l7_msg = x->d.msgs;
	ev->l7_more = 0;
	x->s.seq = ev->tcp_seq + at;
	x->s.n = n;
	x->s.i = x->s.req = x->s.resp = x->s.head = 0;
	if (ev->l7_flags & FLOWCTL_L7_FOLLOWED) {
		if (n)
			bpf_loop(FLOWCTL_MAX_PAYLOAD + 64, l7_step, &unused, 0);
		else
			x->d.mode = L7_UNKNOWN;
		next = x->d.next - ev->tcp_seq;
		if (x->d.mode != L7_UNKNOWN && next > (__s32)at && (__u32)next < len) {
			if (!last)
				ev->l7_more = next;
			else
				x->d.mode = L7_UNKNOWN; /* more messages than windows */
		}
	}
	if (x->s.head) {
		/* Its response has a length but no body: the responses are no longer followed. */
		x->k.ifindex ^= 1;
		o = bpf_map_lookup_elem(&l7_owners, &x->k);
		if (o)
			o->mode = L7_UNKNOWN;
		x->k.ifindex ^= 1;
	}
	ev->l7_starts = x->s.req + x->s.resp;
	if (x->again) {
		/* Its first copy reached user space or was counted lost. A start in it was not in its
		 * first copy (which came before the bytes ahead of it): counted lost here. */
		count_n(FLOWCTL_CNT_L7_LOST_HTTP_REQ, x->s.req);
		count_n(FLOWCTL_CNT_L7_LOST_HTTP_RESP, x->s.resp);
	} else if (bpf_ringbuf_output(&events, ev, FLOWCTL_FLOW_EVENT_HDR_LEN + n, 0)) {
		count(FLOWCTL_CNT_RINGBUF_FULL);
		if (!(ev->l7_flags & FLOWCTL_L7_FOLLOWED)) {
			l7_lost(ev->payload, n, FLOWCTL_L7_HTTP);
		} else {
			count_n(FLOWCTL_CNT_L7_LOST_HTTP_REQ, x->s.req);
			count_n(FLOWCTL_CNT_L7_LOST_HTTP_RESP, x->s.resp);
		}
	} else {
		count(FLOWCTL_CNT_EVENTS);
	}
	return ev->l7_more;
}

/* The event emit built in `scratch` is an HTTP segment (payload at `off` in its skb, direction
 * `side`): the TC program sends it when the slow path returns (l7_http_emit), on a stack of its
 * own, as the slow path's is nearly full. Returns L7_PENDING. */
static __always_inline int l7_pending(__u32 off, __u32 side)
{
	struct l7_scratch *x = l7_x(NULL, 0);

	if (x) {
		x->off = off;
		x->side = side;
	}
	return L7_PENDING;
}

/* Whether bytes [seq, end) of direction `d` were all sent before. */
static __always_inline int l7_again(const struct l7_dir *d, __u32 seq, __u32 end)
{
	if (!d->sent)
		return 0;
	return (__s32)(end - d->hi) <= 0 ||
	       (d->lo2 != d->hi2 && (__s32)(seq - d->lo2) >= 0 && (__s32)(end - d->hi2) <= 0);
}

/* Notes bytes [seq, end) of direction `d` as sent. A run past a hole is kept apart until the hole
 * is sent, so that the hole's bytes, when they come, are not taken for sent. */
static __always_inline void l7_sent(struct l7_dir *d, __u32 seq, __u32 end)
{
	if (!d->sent || (__s32)(seq - d->hi) <= 0) {
		if (!d->sent || (__s32)(end - d->hi) > 0)
			d->hi = end;
		d->sent = 1;
		if (d->lo2 != d->hi2 && (__s32)(d->lo2 - d->hi) <= 0) {
			if ((__s32)(d->hi2 - d->hi) > 0)
				d->hi = d->hi2;
			d->lo2 = d->hi2 = 0;
		}
		return;
	}
	if (d->lo2 == d->hi2 || (__s32)(seq - d->hi2) > 0 || (__s32)(end - d->lo2) < 0) {
		d->lo2 = seq; /* another run replaces one it does not touch */
		d->hi2 = end;
		return;
	}
	if ((__s32)(seq - d->lo2) < 0)
		d->lo2 = seq;
	if ((__s32)(end - d->hi2) > 0)
		d->hi2 = end;
}

/* Sends segment `ev` (in `scratch`; its payload at `off` in skb, or in the stash: l7_load) of
 * direction x->k as its windows, following the direction's messages when its state says where
 * they are. */
__noinline int l7_segment(struct __sk_buff *skb, __u32 off)
{
	__u32 zero = 0, at = 0, w, end;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_dir *d;
	__s32 next;

	if (!ev || !x)
		return 0;
	x->d.msgs = 0;
	d = x->loose ? NULL : bpf_map_lookup_elem(&l7_owners, &x->k);
	end = ev->tcp_seq + ev->payload_len;
	/* A retransmission is not sent again: user space would read a message counted lost with
	 * its first copy, and take the kernel's starts for wrong. */
	x->again = d && l7_again(d, ev->tcp_seq, end);
	if (x->again && ev->reason != FLOWCTL_REASON_L7) {
		/* The packet's own record (a periodic one, say) still goes, without the bytes. */
		ev->l7 = FLOWCTL_L7_NONE;
		ev->captured_len = 0;
		if (bpf_ringbuf_output(&events, ev, FLOWCTL_FLOW_EVENT_HDR_LEN, 0))
			count(FLOWCTL_CNT_RINGBUF_FULL);
		else
			count(FLOWCTL_CNT_EVENTS);
		ev->l7 = FLOWCTL_L7_HTTP;
	}
	if (d && d->mode != L7_UNKNOWN) {
		next = d->next - ev->tcp_seq;
		/* Past a hole (bytes this interface has not seen yet) it cannot tell. */
		if (next >= 0)
			ev->l7_flags = FLOWCTL_L7_FOLLOWED;
		if (next >= 0 && (__u32)next < ev->payload_len)
			at = next;
		x->d = *d;
	}
	for (w = 0; w < L7_WINDOWS; w++) {
		at = l7_window(skb, off, at, w + 1 == L7_WINDOWS);
		if (!at)
			break;
	}
	if (d && (ev->l7_flags & FLOWCTL_L7_FOLLOWED)) {
		/* The next start is in bytes sent past a hole, unfollowed (two segments came early). */
		if (x->d.mode != L7_UNKNOWN && d->lo2 != d->hi2 && (__s32)(x->d.next - d->lo2) >= 0 &&
		    (__s32)(x->d.next - d->hi2) < 0)
			x->d.mode = L7_UNKNOWN;
		x->d.ifindex = d->ifindex;
		*d = x->d;
	}
	if (d && !x->again)
		l7_sent(d, ev->tcp_seq, end);
	return 0;
}

static __always_inline __u32 l7_slot(const struct flowctl_conn_key *k)
{
	return ((k->addr[0][3] ^ k->addr[1][3] ^ ((__u32)k->port[0] << 16 | k->port[1]) ^ k->ifindex) *
		2654435761U) >> 28;
}

static __always_inline int same_dir(const struct flowctl_conn_key *a, const struct flowctl_conn_key *b)
{
	const __u32 *p = (const __u32 *)a, *q = (const __u32 *)b;
	__u32 i, diff = 0;

	for (i = 0; i < sizeof(*a) / 4; i++)
		diff |= p[i] ^ q[i];
	return !diff;
}

/* Keeps segment `ev` (payload at `off` in skb), which came before the bytes ahead of it, in its
 * direction's stash slot. Returns 1 when kept. */
__noinline int l7_stash_put(struct __sk_buff *skb, __u32 off)
{
	__u32 zero = 0, slot, len;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_stash *st;

	if (!ev || !x)
		return 0;
	slot = l7_slot(&x->k);
	st = bpf_map_lookup_elem(&l7_stash, &slot);
	len = ev->payload_len;
	if (!st || !len || len > L7_STASH_MAX)
		return 0;
	if (__sync_val_compare_and_swap(&st->state, S_EMPTY, S_FILLING) != S_EMPTY)
		return 0;
	asm volatile("%0 &= 0x1ffff" : "+r"(len)); /* as in emit */
	if (!len || len > L7_STASH_MAX || bpf_skb_load_bytes(skb, off, st->data, len)) {
		__sync_lock_test_and_set(&st->state, S_EMPTY);
		return 0;
	}
	__builtin_memcpy(st->hdr, ev, sizeof(st->hdr));
	st->k = x->k;
	__sync_lock_test_and_set(&st->state, S_READY);
	return 1;
}

/* Sends the segment in the stash slot of direction x->k once the bytes before it have passed
 * (or it is older than L7_STASH_NS: then it goes unfollowed, as it would have without a stash).
 * Called after every HTTP segment, so the CPU that wrote the direction's state or the one that
 * stashed, whichever comes second, sends it. */
__noinline int l7_stash_take(struct __sk_buff *skb)
{
	__u32 zero = 0, slot;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	const struct flow_event *kept;
	struct l7_stash *st;
	struct l7_dir *d;
	int turn;

	if (!ev || !x)
		return 0;
	slot = l7_slot(&x->k);
	st = bpf_map_lookup_elem(&l7_stash, &slot);
	if (!st || st->state != S_READY)
		return 0;
	kept = (const struct flow_event *)st->hdr;
	turn = (__s64)(ev->ts_ns - kept->ts_ns) > (__s64)L7_STASH_NS;
	if (!turn && same_dir(&st->k, &x->k)) {
		d = bpf_map_lookup_elem(&l7_owners, &x->k);
		turn = !d || d->mode == L7_UNKNOWN || (__s32)(d->next - kept->tcp_seq) >= 0;
	}
	if (!turn || __sync_val_compare_and_swap(&st->state, S_READY, S_TAKEN) != S_READY)
		return 0;
	__builtin_memcpy(ev, st->hdr, sizeof(st->hdr));
	x->k = st->k;
	d = bpf_map_lookup_elem(&l7_owners, &x->k);
	if (d && __sync_val_compare_and_swap(&d->busy, 0, 1)) {
		/* Another CPU reads the direction: it takes the segment when done. */
		__sync_lock_test_and_set(&st->state, S_READY);
		return 0;
	}
	x->src = slot + 1;
	x->loose = 0;
	l7_segment(skb, 0);
	x->src = 0;
	__sync_lock_test_and_set(&st->state, S_EMPTY);
	if (d)
		__sync_lock_test_and_set(&d->busy, 0);
	return 1;
}

/* Sends the pending HTTP segment (l7_pending) as its windows, or keeps it until its turn. */
__noinline int l7_http_emit(struct __sk_buff *skb)
{
	__u32 zero = 0, side;
	struct flow_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct l7_scratch *x = bpf_map_lookup_elem(&l7_scratch, &zero);
	struct l7_dir *d;

	if (!ev || !x)
		return 0;
	side = x->side & 1;
	__builtin_memset(&x->k, 0, sizeof(x->k));
	__builtin_memcpy(x->k.addr[0], side ? ev->dst_ip : ev->src_ip, 16);
	__builtin_memcpy(x->k.addr[1], side ? ev->src_ip : ev->dst_ip, 16);
	x->k.port[0] = side ? ev->dst_port : ev->src_port;
	x->k.port[1] = side ? ev->src_port : ev->dst_port;
	x->k.ifindex = side;
	x->k.proto = ev->proto;
	x->k.ip_version = ev->ip_version;
	x->src = 0;
	x->loose = 0;
	d = bpf_map_lookup_elem(&l7_owners, &x->k);
	if (!d) {
		l7_segment(skb, x->off);
		return 0;
	}
	/* One CPU at a time reads a direction: its state is read, then written whole. A segment that
	 * comes while another CPU reads one waits in the stash like an early one, else goes loose. */
	if (__sync_val_compare_and_swap(&d->busy, 0, 1)) {
		if (d->mode == L7_UNKNOWN || !l7_stash_put(skb, x->off)) {
			x->loose = 1;
			l7_segment(skb, x->off);
			x->loose = 0;
		}
	} else {
		if (d->mode == L7_UNKNOWN || (__s32)(d->next - ev->tcp_seq) >= 0 || !l7_stash_put(skb, x->off))
			l7_segment(skb, x->off);
		__sync_lock_test_and_set(&d->busy, 0);
	}
	l7_stash_take(skb);
	return 0;
}

#endif /* __FLOWCTL_L7_BPF_H */
