/*
 * fuzz_redis.c - libFuzzer target: what the shared Redis gives back, which
 * another farm member or an attacker with access to it may have written.
 *
 * The first byte picks the decoder, the rest is its input:
 *   even: a record value (redisfmt_rec_parse). One that parses must
 *         format and parse back to the same record, within the buffer
 *         the store formats into.
 *   odd:  a pub/sub message (redisfmt_msg_parse) as this instance,
 *         whose id is "mx1:42", receives it. One that is passed on must
 *         be the text after the first space, NUL-terminated, 1 to 512
 *         bytes without NUL, CR or LF, never one of our own.
 * The input is copied to a heap block of its exact size (no NUL after
 * it, as hiredis gives none to rely on) so that a read past it is caught.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redisfmt.h"
#include "store_kind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void record(const char *s, size_t len)
{
	struct store_rec rec, back;
	char buf[128];

	if (redisfmt_rec_parse(s, len, &rec) < 0)
		return;
	redisfmt_rec_format(buf, sizeof(buf), &rec);
	if (strlen(buf) >= 96 || redisfmt_rec_parse(buf, strlen(buf), &back) < 0 ||
	    back.first != rec.first || back.last != rec.last || back.expires != rec.expires ||
	    back.count != rec.count)
		__builtin_trap();
	store_kind_rec_valid(&rec);
}

static void message(const char *s, size_t len)
{
	static const char id[] = "mx1:42";
	char buf[512 + 1];
	const char *sp;
	int n = redisfmt_msg_parse(id, s, len, buf, sizeof(buf));

	if (n < 0)
		return;
	sp = memchr(s, ' ', len);
	if (sp == NULL || n < 1 || n > 512 || (size_t)n != len - (size_t)(sp + 1 - s) ||
	    memcmp(buf, sp + 1, (size_t)n) != 0 || buf[n] != '\0' || strlen(buf) != (size_t)n ||
	    strpbrk(buf, "\r\n") != NULL)
		__builtin_trap();
	if (len > sizeof(id) - 1 && memcmp(s, id, sizeof(id) - 1) == 0 && s[sizeof(id) - 1] == ' ')
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	if ((s = malloc(size - 1 ? size - 1 : 1)) == NULL)
		abort();
	memcpy(s, data + 1, size - 1);
	if (data[0] % 2 == 0)
		record(s, size - 1);
	else
		message(s, size - 1);
	free(s);
	return 0;
}
