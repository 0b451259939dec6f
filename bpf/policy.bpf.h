/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Verdict: identities from the ipcache, then the policy map in the order fixed by contracts.md
 * ("Policy maps"). The compiler writes deny-over-allow intersections, so the first hit decides. */
#ifndef __FLOWCTL_POLICY_BPF_H
#define __FLOWCTL_POLICY_BPF_H

#define IDENTITY_WORLD 2

static __always_inline __u32 lookup_identity(const __u32 *addr, __u8 ip_version)
{
	struct flowctl_ipcache_key k = {};
	struct flowctl_ipcache_value *v;

	k.family = ip_version;
	if (ip_version == 4) {
		k.prefixlen = 32 + 32;
		__builtin_memcpy(k.addr, addr, 4);
	} else {
		k.prefixlen = 32 + 128;
		__builtin_memcpy(k.addr, addr, 16);
	}
	v = bpf_map_lookup_elem(&ipcache, &k);
	return v ? v->identity : IDENTITY_WORLD;
}

struct decision {
	__u32 rule_ref;
	__u8 allow;
	__u8 enforced;
	__u8 fqdn; /* the endpoint has toFQDNs rules (FLOWCTL_ENFORCE_FQDN) */
};

static __always_inline int policy_probe(struct flowctl_policy_key *k, struct decision *d)
{
	struct flowctl_policy_value *v = bpf_map_lookup_elem(&policy, k);

	if (!v)
		return 0;
	d->allow = !v->deny;
	d->rule_ref = v->rule_ref;
	return 1;
}

/* Decides for `endpoint` talking to `peer` in `direction` (the endpoint's view). */
static __always_inline void policy_decide(__u32 endpoint, __u32 peer, __u16 port, __u8 proto,
					  __u8 direction, struct decision *d)
{
	struct flowctl_policy_key k = {};
	__u32 *bits;

	d->allow = 1;
	d->enforced = 0;
	d->rule_ref = 0;
	d->fqdn = 0;
	bits = bpf_map_lookup_elem(&policy_enforce, &endpoint);
	if (!bits ||
	    !(*bits & (direction == FLOWCTL_DIR_INGRESS ? FLOWCTL_ENFORCE_INGRESS : FLOWCTL_ENFORCE_EGRESS)))
		return;
	d->enforced = 1;
	d->fqdn = !!(*bits & FLOWCTL_ENFORCE_FQDN);
	k.endpoint_identity = endpoint;
	k.direction = direction;

	k.peer_identity = peer;
	k.port = port;
	k.proto = proto;
	if (policy_probe(&k, d))
		return;
	k.port = 0;
	if (port && policy_probe(&k, d))
		return;
	k.proto = 0;
	if (policy_probe(&k, d))
		return;
	k.peer_identity = 0;
	k.port = port;
	k.proto = proto;
	if (policy_probe(&k, d))
		return;
	k.port = 0;
	if (port && policy_probe(&k, d))
		return;
	k.proto = 0;
	if (policy_probe(&k, d))
		return;
	d->allow = 0; /* enforced, no rule: default deny */
}

#endif /* __FLOWCTL_POLICY_BPF_H */
