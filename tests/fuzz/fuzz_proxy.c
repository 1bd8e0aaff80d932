/*
 * fuzz_proxy.c - libFuzzer target: PROXY v1/v2 headers through the parser,
 * and whatever parses is built again and must parse to the same addresses.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi, back;
	char hdr[PROXY_HDR_MAX];
	int n;

	if (proxy_parse(data, size, &pi) != PROXY_DONE)
		return 0;
	if (pi.len > size)
		__builtin_trap();
	if (pi.local)
		return 0;
	n = pi.version == 1 ? proxy_v1(hdr, sizeof(hdr), (struct sockaddr *)&pi.src,
				       (struct sockaddr *)&pi.dst)
			    : proxy_v2(hdr, sizeof(hdr), (struct sockaddr *)&pi.src,
				       (struct sockaddr *)&pi.dst);
	if (n <= 0 || (size_t)n > sizeof(hdr))
		__builtin_trap();
	if (proxy_parse((const unsigned char *)hdr, (size_t)n, &back) != PROXY_DONE)
		__builtin_trap();
	return 0;
}
