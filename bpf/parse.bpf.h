/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Packet parsing for the TC programs: Ethernet, IPv4, IPv6 (+ extension headers), TCP, UDP,
 * ICMPv4/v6, SCTP. Headers are read by direct packet access after pulling at most PULL_LEN bytes
 * into the linear area; every read is bounds-checked, so truncated packets end as PARSE_MALFORMED,
 * never as a verifier rejection or an out-of-bounds read. */
#ifndef __FLOWCTL_PARSE_BPF_H
#define __FLOWCTL_PARSE_BPF_H

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6_ 58 /* a #define in uapi headers, absent from vmlinux.h */
#define IPV4_FRAG_MF 0x2000
#define IPV4_FRAG_OFFSET 0x1fff

/* Headers deeper than this are not parsed (counted as malformed): bounds the pull and the
 * extension-header walk. */
#define PULL_LEN 256
#define MAX_IPV6_EXT 8

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_MALFORMED,
	PARSE_FRAGMENT, /* non-first fragment: L3 known, no L4 header */
};

struct pkt {
	__u32 src[4];
	__u32 dst[4];
	__u32 payload_off; /* from skb->data */
	__u32 payload_len; /* after the L4 header, by the IP length; of a fragment: its IP payload */
	__u32 tcp_seq; /* host order; 0 for non-TCP */
	__u32 tcp_ack;
	__u16 sport; /* host order; 0 for ICMP */
	__u16 dport;
	__u16 key_id; /* ICMP echo id (both key ports), else 0 */
	__u16 tcp_flags;
	__u8 proto;
	__u8 ip_version;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 eth_src[6];
	__u8 eth_dst[6];
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __always_inline int parse_l4(void *data, void *end, __u32 off, __u32 l4_len, struct pkt *p)
{
	__u8 *l4 = data + off;
	__u32 hlen;

	switch (p->proto) {
	case IPPROTO_TCP:
		if ((void *)(l4 + 20) > end || l4_len < 20)
			return PARSE_MALFORMED;
		hlen = (l4[12] >> 4) * 4;
		if (hlen < 20 || hlen > l4_len)
			return PARSE_MALFORMED;
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		p->tcp_flags = l4[13] | ((__u16)(l4[12] & 1) << 8);
		p->tcp_seq = bpf_ntohl(*(__u32 *)(l4 + 4));
		p->tcp_ack = bpf_ntohl(*(__u32 *)(l4 + 8));
		break;
	case IPPROTO_UDP:
		hlen = 8;
		if ((void *)(l4 + 8) > end || l4_len < 8)
			return PARSE_MALFORMED;
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		break;
	case IPPROTO_SCTP:
		hlen = 12;
		if ((void *)(l4 + 12) > end || l4_len < 12)
			return PARSE_MALFORMED;
		p->sport = ((__u16)l4[0] << 8) | l4[1];
		p->dport = ((__u16)l4[2] << 8) | l4[3];
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_:
		hlen = 8;
		if ((void *)(l4 + 8) > end || l4_len < 8)
			return PARSE_MALFORMED;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		/* Echo request and reply share an entry through the echo id. */
		if (p->proto == IPPROTO_ICMP ? (l4[0] == 8 || l4[0] == 0) : (l4[0] == 128 || l4[0] == 129))
			p->key_id = ((__u16)l4[4] << 8) | l4[5];
		break;
	default:
		hlen = 0;
	}
	p->payload_off = off + hlen;
	p->payload_len = l4_len - hlen;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(void *data, void *end, struct pkt *p, __u32 skb_len)
{
	__u8 *ip = data + ETH_HLEN;
	__u32 ihl, tot, frag;

	if ((void *)(ip + 20) > end)
		return PARSE_MALFORMED;
	if ((ip[0] >> 4) != 4)
		return PARSE_MALFORMED;
	ihl = (ip[0] & 0xf) * 4;
	tot = ((__u32)ip[2] << 8) | ip[3];
	if (ihl < 20 || tot < ihl || tot > skb_len - ETH_HLEN)
		return PARSE_MALFORMED;
	p->ip_version = 4;
	p->proto = ip[9];
	__builtin_memcpy(&p->src[0], ip + 12, 4);
	__builtin_memcpy(&p->dst[0], ip + 16, 4);
	frag = ((__u32)ip[6] << 8) | ip[7];
	if (frag & IPV4_FRAG_OFFSET) {
		p->payload_len = tot - ihl;
		return PARSE_FRAGMENT;
	}
	return parse_l4(data, end, ETH_HLEN + ihl, tot - ihl, p);
}

static __always_inline int ipv6_is_ext(__u8 nh)
{
	/* hop-by-hop, routing, fragment, destination options, AH, mobility, HIP, shim6 */
	return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51 || nh == 135 || nh == 139 ||
	       nh == 140;
}

static __always_inline int parse_ipv6(void *data, void *end, struct pkt *p, __u32 skb_len)
{
	__u8 *ip = data + ETH_HLEN;
	__u32 off = ETH_HLEN + 40, end_off;
	__u8 nh;
	int i;

	if ((void *)(ip + 40) > end)
		return PARSE_MALFORMED;
	if ((ip[0] >> 4) != 6)
		return PARSE_MALFORMED;
	end_off = off + (((__u32)ip[4] << 8) | ip[5]);
	if (end_off > skb_len)
		return PARSE_MALFORMED;
	p->ip_version = 6;
	__builtin_memcpy(p->src, ip + 8, 16);
	__builtin_memcpy(p->dst, ip + 24, 16);
	nh = ip[6];

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT; i++) {
		__u8 *h;

		if (!ipv6_is_ext(nh))
			break;
		if (off > PULL_LEN)
			return PARSE_MALFORMED;
		h = data + off;
		if ((void *)(h + 8) > end || off + 8 > end_off)
			return PARSE_MALFORMED;
		if (nh == 44) {
			p->proto = h[0];
			/* offset != 0: a later fragment, without the L4 header */
			if ((((__u16)h[2] << 8) | h[3]) & 0xfff8) {
				p->payload_len = end_off - off - 8;
				return PARSE_FRAGMENT;
			}
			off += 8;
		} else if (nh == 51) {
			off += ((__u32)h[1] + 2) * 4;
		} else {
			off += ((__u32)h[1] + 1) * 8;
		}
		nh = h[0];
	}
	if (ipv6_is_ext(nh) || off > PULL_LEN || off > end_off)
		return PARSE_MALFORMED;
	p->proto = nh;
	return parse_l4(data, end, off, end_off - off, p);
}

/* skb->data and skb->data_end as one ctx load each: clang 14 otherwise hoists `skb + offset`
 * out of the two reads (before and after bpf_skb_pull_data), which the verifier rejects
 * ("dereference of modified ctx ptr"). */
static __always_inline void *skb_data(struct __sk_buff *skb)
{
	void *d;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(d)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data)));
	return d;
}

static __always_inline void *skb_data_end(struct __sk_buff *skb)
{
	void *d;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(d)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data_end)));
	return d;
}

/* Ethernet: the veth host side always carries Ethernet frames. A global (non-inlined) function:
 * the verifier checks it once instead of once per parse path in every caller, which otherwise
 * multiplies the IPv6 extension-header paths by the accounting paths past the 1M-insn limit. */
__noinline int parse_packet(struct __sk_buff *skb, struct pkt *p)
{
	void *data, *end;
	__u32 linear = skb_data_end(skb) - skb_data(skb);
	__u16 proto;
	__u8 *eth;

	if (!p)
		return PARSE_MALFORMED;
	if (linear < skb->len && linear < PULL_LEN)
		bpf_skb_pull_data(skb, skb->len < PULL_LEN ? skb->len : PULL_LEN);
	data = skb_data(skb);
	end = skb_data_end(skb);
	eth = data;
	if ((void *)(eth + ETH_HLEN) > end)
		return PARSE_MALFORMED;
	__builtin_memcpy(p->eth_dst, eth, 6);
	__builtin_memcpy(p->eth_src, eth + 6, 6);
	proto = ((__u16)eth[12] << 8) | eth[13];
	if (proto == ETH_P_IP)
		return parse_ipv4(data, end, p, skb->len);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(data, end, p, skb->len);
	return PARSE_NOT_IP;
}

#endif /* __FLOWCTL_PARSE_BPF_H */
