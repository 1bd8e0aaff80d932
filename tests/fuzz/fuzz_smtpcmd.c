/*
 * fuzz_smtpcmd.c - libFuzzer target: a client's byte stream through the
 * line splitter and the command parser, exactly as smtp.c drives them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

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
