/*
 * fuzz_smtpcmd.c - libFuzzer target: a client's byte stream through the
 * line splitter and the command parser, exactly as smtp.c drives them, and
 * the check of what a held client pipelines (smtpcmd_pipe_check).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_pipe - the held client's pipelining check: checking the bytes in
 * pieces (as they arrive) must give what checking them at once gives, and
 * never scan past them.
 */
static void fuzz_pipe(const char *buf, size_t size)
{
	struct smtpcmd_pipe all = {0, 0, 0}, part = {0, 0, 0};
	int a = smtpcmd_pipe_check(buf, size, &all), b = 0;
	size_t n = 0;

	while (n < size && b == 0) {
		n += 1 + (unsigned char)buf[n] % 97;
		if (n > size)
			n = size;
		b = smtpcmd_pipe_check(buf, n, &part);
	}
	if (a != b || all.scanned > size || part.scanned > size)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	fuzz_pipe(buf, size);

	while (off < size) {
		size_t ll = 0, used = 0;
		struct smtpcmd cmd;

		switch (smtpcmd_scan(buf + off, size - off, &ll, &used)) {
		case SMTPLINE_MORE:
			return 0;
		case SMTPLINE_TOO_LONG: {
			const char *lf = memchr(buf + off, '\n', size - off);

			if (lf == NULL)
				return 0;
			off = (size_t)(lf - buf) + 1;
			continue;
		}
		case SMTPLINE_BARE_LF:
		case SMTPLINE_OK:
			if (ll > SMTP_AUTH_LINE_MAX || used > size - off)
				__builtin_trap();
			smtpcmd_parse(buf + off, ll, &cmd);
			if (cmd.arg < buf + off || cmd.arg + cmd.arglen > buf + off + ll)
				__builtin_trap();
			off += used;
			continue;
		}
	}
	return 0;
}
