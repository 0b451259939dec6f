// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A calibration for bench/iperf-impact.ts (`--modes ...,tc-pad`): a TC program that touches no
 * memory and only spends time, 150 dependent register adds (~150 cycles), so a run shows what a
 * given number of nanoseconds per packet costs the stream, apart from any cache line. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ADD1 "r2 += 1\n"
#define ADD10 ADD1 ADD1 ADD1 ADD1 ADD1 ADD1 ADD1 ADD1 ADD1 ADD1
#define ADD50 ADD10 ADD10 ADD10 ADD10 ADD10

SEC("tc")
int bench_pad(struct __sk_buff *skb)
{
	asm volatile("r2 = 0\n" ADD50 ADD50 ADD50 ::: "r2");
	return 0;
}
