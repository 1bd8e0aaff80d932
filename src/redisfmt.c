/*
 * redisfmt.c - the Redis store's formats (redisfmt.h): a record value,
 * "1 FIRST LAST EXPIRES COUNT" (format version, then decimal fields), and
 * a pub/sub message, "INSTANCEID MSG". Everything read here comes from a
 * Redis that others can write to: exact forms only, bounded, and no
 * NUL-termination assumed (hiredis gives none to rely on).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "redisfmt.h"
#include "store_kind.h"

#define MSG_MAX REDISFMT_MSG_MAX

void redisfmt_rec_format(char *buf, size_t bufsz, const struct store_rec *rec)
{
	snprintf(buf, bufsz, "1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu32, rec->first,
		 rec->last, rec->expires, rec->count);
}

/* rec_field - a run of digits at s[*i..len), no sign, within int64; -1 if none. */
static int rec_field(const char *s, size_t len, size_t *i, long long *out)
{
	long long v = 0;
	size_t start = *i;

	for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		int d = s[*i] - '0';

		if (v > (LLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*i == start)
		return -1;
	*out = v;
	return 0;
}

int redisfmt_rec_parse(const char *s, size_t len, struct store_rec *rec)
{
	/*
	 * "1 FIRST LAST EXPIRES COUNT": another farm member (or whoever can
	 * write to Redis) wrote it, so exactly that, digits only, one space
	 * between fields, and plausible times (store_kind_rec_valid).
	 */
	long long v[4];
	size_t i = 2;

	if (len < 2 || s[0] != '1' || s[1] != ' ')
		return -1;
	for (int f = 0; f < 4; f++) {
		if (f > 0 && (i >= len || s[i++] != ' '))
			return -1;
		if (rec_field(s, len, &i, &v[f]) < 0)
			return -1;
	}
	if (i != len || v[3] > UINT32_MAX)
		return -1;
	rec->first = v[0];
	rec->last = v[1];
	rec->expires = v[2];
	rec->count = (uint32_t)v[3];
	return store_kind_rec_valid(rec) ? 0 : -1;
}

int redisfmt_msg_parse(const char *id, const char *s, size_t len, char *buf, size_t bufsz)
{
	size_t idlen = strlen(id);
	const char *sp;
	size_t n;

	/* Ours, or not "ID MSG": ignored. */
	if (len > idlen && strncmp(s, id, idlen) == 0 && s[idlen] == ' ')
		return -1;
	if ((sp = memchr(s, ' ', len)) == NULL)
		return -1;
	n = len - (size_t)(sp + 1 - s);
	if (n == 0 || n > MSG_MAX || n >= bufsz || memchr(sp + 1, '\0', n) != NULL)
		return -1;
	memcpy(buf, sp + 1, n);
	buf[n] = '\0';
	if (strpbrk(buf, "\r\n") != NULL)
		return -1;
	return (int)n;
}
