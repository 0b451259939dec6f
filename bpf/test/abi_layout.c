// Host program (layout.ts runs it): prints the layout of every struct in flowctl.h as JSON
// (sizeof/offsetof), the connection slots' fields the datapath tests read (conn.bpf.h), and one
// sample flow_event filled with distinct values, so the TypeScript decoder is checked against the
// bytes the compiler lays out, not against a copy of the header.
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "../flowctl.h"
#include "../conn.bpf.h"

#define F(s, f) printf("%s\"%s\": %zu", first ? "" : ", ", #f, offsetof(struct s, f)), first = 0
#define FN(s, f, name) printf("%s\"%s\": %zu", first ? "" : ", ", #name, offsetof(struct s, f)), first = 0
#define BEGIN(name, s, sz) printf("%s\"%s\": {\"size\": %zu", n++ ? ", " : "", name, (size_t)(sz)), first = 0
#define END() printf("}")

static void hex(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		printf("%02x", b[i]);
}

int main(void)
{
	int first, n = 0;

	printf("{");
	BEGIN("flow_event", flow_event, offsetof(struct flow_event, payload));
	F(flow_event, type); F(flow_event, abi_version); F(flow_event, obs_point);
	F(flow_event, reason); F(flow_event, verdict); F(flow_event, ip_version);
	F(flow_event, proto); F(flow_event, l7); F(flow_event, ts_ns); F(flow_event, packets);
	F(flow_event, bytes); F(flow_event, reply_packets); F(flow_event, reply_bytes);
	F(flow_event, first_seen_ns); F(flow_event, last_seen_ns); F(flow_event, ifindex);
	F(flow_event, src_identity); F(flow_event, dst_identity); F(flow_event, policy_ref);
	F(flow_event, payload_len); F(flow_event, tcp_seq); F(flow_event, tcp_ack); F(flow_event, src_ip); F(flow_event, dst_ip);
	F(flow_event, src_port); F(flow_event, dst_port); F(flow_event, tcp_flags);
	F(flow_event, tcp_flags_seen); F(flow_event, drop_reason); F(flow_event, captured_len);
	F(flow_event, icmp_type); F(flow_event, icmp_code); F(flow_event, is_reply);
	F(flow_event, policy_direction); F(flow_event, eth_src); F(flow_event, eth_dst);
	F(flow_event, captured_off); F(flow_event, l7_start); F(flow_event, l7_msg); F(flow_event, l7_more);
	F(flow_event, l7_flags); F(flow_event, l7_starts); F(flow_event, payload);
	END();
	BEGIN("suppressed_event", flowctl_suppressed_event, sizeof(struct flowctl_suppressed_event));
	F(flowctl_suppressed_event, type); F(flowctl_suppressed_event, abi_version);
	F(flowctl_suppressed_event, ip_version); F(flowctl_suppressed_event, obs_point);
	F(flowctl_suppressed_event, verdict); F(flowctl_suppressed_event, many_sources);
	F(flowctl_suppressed_event, proto); F(flowctl_suppressed_event, tcp_flags); F(flowctl_suppressed_event, drop_reason);
	F(flowctl_suppressed_event, dst_port); F(flowctl_suppressed_event, ifindex);
	F(flowctl_suppressed_event, scope);
	F(flowctl_suppressed_event, ts_ns); F(flowctl_suppressed_event, first_ns);
	F(flowctl_suppressed_event, last_ns); F(flowctl_suppressed_event, packets);
	F(flowctl_suppressed_event, syns); F(flowctl_suppressed_event, dropped);
	F(flowctl_suppressed_event, src_ip); F(flowctl_suppressed_event, dst_ip);
	END();
	BEGIN("ipcache_key", flowctl_ipcache_key, sizeof(struct flowctl_ipcache_key));
	F(flowctl_ipcache_key, prefixlen); F(flowctl_ipcache_key, family); F(flowctl_ipcache_key, addr);
	END();
	BEGIN("ipcache_value", flowctl_ipcache_value, sizeof(struct flowctl_ipcache_value));
	F(flowctl_ipcache_value, identity);
	END();
	BEGIN("policy_key", flowctl_policy_key, sizeof(struct flowctl_policy_key));
	F(flowctl_policy_key, endpoint_identity); F(flowctl_policy_key, peer_identity);
	F(flowctl_policy_key, port); F(flowctl_policy_key, proto); F(flowctl_policy_key, direction);
	END();
	BEGIN("policy_value", flowctl_policy_value, sizeof(struct flowctl_policy_value));
	F(flowctl_policy_value, rule_ref); F(flowctl_policy_value, deny);
	END();
	BEGIN("config_value", flowctl_config, sizeof(struct flowctl_config));
	F(flowctl_config, epoch); F(flowctl_config, policy_revision);
	END();
	BEGIN("isolate_count", flowctl_isolate_count, sizeof(struct flowctl_isolate_count));
	F(flowctl_isolate_count, packets); F(flowctl_isolate_count, bytes);
	END();
	BEGIN("fqdn_name_key", flowctl_fqdn_name_key, sizeof(struct flowctl_fqdn_name_key));
	F(flowctl_fqdn_name_key, hash); F(flowctl_fqdn_name_key, kind);
	END();
	BEGIN("fqdn_glob", flowctl_fqdn_glob, sizeof(struct flowctl_fqdn_glob));
	F(flowctl_fqdn_glob, bits); F(flowctl_fqdn_glob, len); F(flowctl_fqdn_glob, pat);
	END();
	BEGIN("fqdn_peer_key", flowctl_fqdn_peer_key, sizeof(struct flowctl_fqdn_peer_key));
	F(flowctl_fqdn_peer_key, family); F(flowctl_fqdn_peer_key, addr);
	END();
	BEGIN("fqdn_ip_key", flowctl_fqdn_ip_key, sizeof(struct flowctl_fqdn_ip_key));
	F(flowctl_fqdn_ip_key, family); F(flowctl_fqdn_ip_key, endpoint); F(flowctl_fqdn_ip_key, addr);
	END();
	BEGIN("fqdn_ip_value", flowctl_fqdn_ip_value, sizeof(struct flowctl_fqdn_ip_value));
	F(flowctl_fqdn_ip_value, expires_ns); F(flowctl_fqdn_ip_value, selectors); F(flowctl_fqdn_ip_value, name_hash);
	END();
	/* Connection entries (conn.bpf.h, kernel-side): the fields the datapath tests read in a slot. */
#define SLOT(name, s)                                                                              \
	BEGIN(name, s, sizeof(struct s));                                                          \
	F(s, gen); FN(s, key.ifindex, ifindex); FN(s, key.port, port);                            \
	FN(s, conn.state, state); FN(s, conn.dir0.packets, packets0);                              \
	FN(s, conn.dir0.bytes, bytes0); FN(s, conn.dir0.last_seen_ns, last_seen0);                 \
	FN(s, conn.dir1.packets, packets1); FN(s, conn.dir1.bytes, bytes1);                        \
	FN(s, conn.dir1.last_seen_ns, last_seen1);                                                 \
	END()
	SLOT("conn4_slot", flowctl_conn4_slot);
	SLOT("conn6_slot", flowctl_conn6_slot);
	BEGIN("conn_counts", conn_counts, sizeof(struct conn_counts));
	FN(conn_counts, packets[0], packets0); FN(conn_counts, packets[1], packets1);
	FN(conn_counts, bytes[0], bytes0); FN(conn_counts, bytes[1], bytes1);
	END();
	printf(", \"conn_state\": {\"closed\": %d}", FLOWCTL_STATE_CLOSED);
	printf(", \"constants\": {\"abi_version\": %d, \"max_payload\": %d, \"hdr_len\": %d, "
	       "\"ev_flow\": %d, \"ev_suppressed\": %d, \"counters\": %d, \"drop_policy_denied\": %d, "
	       "\"drop_rate_limited\": %d}",
	       FLOWCTL_ABI_VERSION, FLOWCTL_MAX_PAYLOAD, FLOWCTL_FLOW_EVENT_HDR_LEN, FLOWCTL_EV_FLOW,
	       FLOWCTL_EV_SUPPRESSED, FLOWCTL_CNT_MAX, FLOWCTL_DROP_POLICY_DENIED, FLOWCTL_DROP_RATE_LIMITED);

	/* A sample IPv6 event: every field a different value, so a swapped offset shows. */
	static struct flow_event ev;
	const unsigned char src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
	const unsigned char dst[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0xbe, 0xef};
	ev.type = FLOWCTL_EV_FLOW;
	ev.abi_version = FLOWCTL_ABI_VERSION;
	ev.obs_point = FLOWCTL_OBS_TO_ENDPOINT;
	ev.reason = FLOWCTL_REASON_L7;
	ev.verdict = FLOWCTL_VERDICT_AUDIT;
	ev.ip_version = 6;
	ev.proto = 6;
	ev.l7 = FLOWCTL_L7_HTTP;
	ev.ts_ns = 0x1122334455667788ULL;
	ev.packets = 3;
	ev.bytes = 4000;
	ev.reply_packets = 5;
	ev.reply_bytes = 6000;
	ev.first_seen_ns = 7000000000ULL;
	ev.last_seen_ns = 8000000000ULL;
	ev.ifindex = 42;
	ev.src_identity = 256;
	ev.dst_identity = 70000;
	ev.policy_ref = 9;
	ev.payload_len = 100000;
	ev.tcp_seq = 0xfedcba98;
	ev.tcp_ack = 0x01234567;
	memcpy(ev.src_ip, src, 16);
	memcpy(ev.dst_ip, dst, 16);
	ev.src_port = 40000;
	ev.dst_port = 8080;
	ev.tcp_flags = 0x118;
	ev.tcp_flags_seen = 0x11a;
	ev.drop_reason = 0;
	ev.icmp_type = 11;
	ev.icmp_code = 12;
	ev.is_reply = FLOWCTL_REPLY_NO;
	ev.policy_direction = FLOWCTL_DIR_INGRESS;
	memcpy(ev.eth_src, "\x02\x00\x00\xaa\xbb\xcc", 6);
	memcpy(ev.eth_dst, "\x0a\x0b\x0c\x0d\x0e\x0f", 6);
	ev.captured_off = 20000;
	ev.l7_start = 20004;
	ev.l7_msg = 77;
	ev.l7_more = 30000;
	ev.l7_flags = FLOWCTL_L7_FOLLOWED;
	ev.l7_starts = 3;
	ev.captured_len = 18;
	memcpy(ev.payload, "GET / HTTP/1.1\r\n\r\n", 18);
	printf(", \"sample\": \"");
	hex(&ev, FLOWCTL_FLOW_EVENT_HDR_LEN + ev.captured_len);
	printf("\"}\n");
	return 0;
}
