/*
 * fuzz_policy.c - libFuzzer target: bytes as a policy connection sends
 * them, cut into requests by policyproto_scan, each parsed; the answer
 * built from the parsed values must stay one line and the empty one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size, reqlen;
	struct policy_attrs a;
	char out[POLICY_ANSWER_MAX];

	while (policyproto_scan(p, left, &reqlen) == POLICY_DONE) {
		size_t n;

		if (reqlen == 0 || reqlen > left)
			__builtin_trap();
		if (policyproto_parse(p, reqlen, &a) == POLICY_OK) {
			n = policyproto_answer(out, sizeof(out), "DEFER_IF_PERMIT", a.helo_name);
			if (n < 2 || n >= sizeof(out) || out[n - 1] != '\n' || out[n - 2] != '\n' ||
			    memchr(out, '\n', n - 2) != NULL || strlen(out) != n)
				__builtin_trap();
		}
		p += reqlen;
		left -= reqlen;
	}
	return 0;
}
