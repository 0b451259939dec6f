// Deliberately rejected by the verifier (unbounded packet read), to test the log on BpfError.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int bad_read(struct __sk_buff *skb) {
  unsigned char *data = (unsigned char *)(long)skb->data;
  return data[64];  // no bounds check against data_end
}
