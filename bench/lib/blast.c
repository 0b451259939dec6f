// One UDP frame sent over and over through an AF_PACKET socket with the qdisc bypassed, in
// sendmmsg batches of 64, for a number of seconds: the traffic of bench/xdp-drop.ts (no pktgen on
// this kernel). Prints the frames the kernel accepted.
// Usage: blast IFNAME SECONDS SRC_IP DST_IP
#define _GNU_SOURCE /* sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: blast IFNAME SECONDS SRC_IP DST_IP\n");
		return 2;
	}
	int fd = socket(AF_PACKET, SOCK_RAW, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one))) {
		perror("socket");
		return 1;
	}
	unsigned char f[60] = {0};
	memset(f, 0xff, 6); /* broadcast: XDP sees the frame before any MAC filter */
	f[6] = 0x02;
	f[12] = 0x08; /* IPv4 */
	struct iphdr *ip = (struct iphdr *)(f + 14);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(f) - 14);
	inet_pton(AF_INET, argv[3], &ip->saddr);
	inet_pton(AF_INET, argv[4], &ip->daddr);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	udp->source = htons(40000);
	udp->dest = htons(9);
	udp->len = htons(sizeof(f) - 14 - 20);

	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1]), .sll_halen = 6};
	memset(sll.sll_addr, 0xff, 6);
	struct iovec iov = {.iov_base = f, .iov_len = sizeof(f)};
	struct mmsghdr m[BATCH];
	for (int i = 0; i < BATCH; i++)
		m[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = &iov, .msg_iovlen = 1}};
	double end = now() + atof(argv[2]);
	unsigned long long sent = 0;
	while (now() < end) {
		int n = sendmmsg(fd, m, BATCH, 0);
		if (n > 0)
			sent += n;
		else if (errno != ENOBUFS && errno != EAGAIN) {
			perror("sendmmsg");
			return 1;
		}
	}
	printf("%llu\n", sent);
	return 0;
}
