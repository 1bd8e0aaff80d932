/*
 * fuzz_reply.c - libFuzzer target: backend replies (greeting, EHLO, the
 * XCLIENT answer) through the reply parser and the capability filter.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;
	char caps[1024];

	while (off < size) {
		struct reply r;

		if (reply_parse(buf + off, size - off, &r) != REPLY_DONE)
			break;
		if (r.len == 0 || r.len > size - off)
			__builtin_trap();
		reply_has_ext(buf + off, r.len, "XCLIENT");
		reply_ehlo_caps(buf + off, r.len, caps, sizeof(caps));
		if (strlen(caps) >= sizeof(caps))
			__builtin_trap();
		off += r.len;
	}
	return 0;
}
