/*
 * reply.c - reading the backend's replies.
 *
 * The backend is trusted more than a client, but it is still a peer on a
 * socket: a broken or hostile backend must not make mxguard read without
 * bound, so every reply is limited in line length and line count.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

enum reply_status reply_parse(const char *buf, size_t len, struct reply *r)
{
	size_t pos = 0;
	int code = -1, nlines = 0;

	for (;;) {
		size_t avail = len - pos;
		size_t window = avail < REPLY_LINE_MAX ? avail : REPLY_LINE_MAX;
		const char *line = buf + pos;
		const char *lf = memchr(line, '\n', window);

		if (lf == NULL)
			return avail >= REPLY_LINE_MAX ? REPLY_BAD : REPLY_MORE;
		size_t ll = (size_t)(lf - line); /* without LF */

		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]))
			return REPLY_BAD;
		if (line[0] < '1' || line[0] > '5')
			return REPLY_BAD;
		int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');

		if (code >= 0 && c != code)
			return REPLY_BAD;
		code = c;
		if (++nlines > REPLY_LINES_MAX)
			return REPLY_BAD;
		pos = (size_t)(lf - buf) + 1;
		if (ll == 3 || line[3] == ' ') {
			r->code = code;
			r->len = pos;
			r->nlines = nlines;
			return REPLY_DONE;
		}
		if (line[3] != '-')
			return REPLY_BAD;
	}
}

/*
 * reply_next_ext - iterate over the extension lines of an EHLO reply (every
 * line but the first). *pos is the cursor; returns the keyword line without
 * the "250-" and line end, or NULL at the end.
 */
static const char *reply_next_ext(const char *buf, size_t len, size_t *pos, size_t *extlen)
{
	while (*pos < len) {
		const char *line = buf + *pos;
		const char *lf = memchr(line, '\n', len - *pos);
		size_t ll = lf ? (size_t)(lf - line) : len - *pos;
		int first = *pos == 0;

		*pos += ll + (lf != NULL);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (first || ll <= 4)
			continue;
		*extlen = ll - 4;
		return line + 4;
	}
	return NULL;
}

static int reply_keyword_is(const char *ext, size_t extlen, const char *kw)
{
	size_t kl = strlen(kw);

	return extlen >= kl && strncasecmp(ext, kw, kl) == 0 &&
	       (extlen == kl || ext[kl] == ' ' || ext[kl] == '=');
}

int reply_has_ext(const char *buf, size_t len, const char *keyword)
{
	size_t pos = 0, el;
	const char *ext;

	while ((ext = reply_next_ext(buf, len, &pos, &el)) != NULL)
		if (reply_keyword_is(ext, el, keyword))
			return 1;
	return 0;
}

/*
 * Extensions that still work when mxguard answers the first commands itself
 * and hands the client over later: those that only change what the client
 * may send after the hand-off point, or that the hand-off itself carries
 * (STARTTLS, AUTH). VRFY, ETRN and the like would be answered by mxguard,
 * which does not implement them; XCLIENT/XFORWARD are for mxguard alone.
 */
static const char *const reply_kept[] = {
	"PIPELINING", "SIZE",	 "STARTTLS", "AUTH",	   "ENHANCEDSTATUSCODES",
	"8BITMIME",   "DSN",	 "SMTPUTF8", "CHUNKING", "BINARYMIME",
	"DELIVERBY",  "REQUIRETLS", NULL,
};

int reply_ehlo_caps(const char *buf, size_t len, char *out, size_t outsz)
{
	size_t pos = 0, el, o = 0;
	const char *ext;
	int n = 0;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	while ((ext = reply_next_ext(buf, len, &pos, &el)) != NULL) {
		int keep = 0;

		for (int i = 0; reply_kept[i] && !keep; i++)
			keep = reply_keyword_is(ext, el, reply_kept[i]);
		if (!keep)
			continue;
		/* Only printable text goes back out to clients. */
		for (size_t i = 0; i < el; i++)
			if (!isprint((unsigned char)ext[i]))
				keep = 0;
		if (!keep || o + el + 2 > outsz)
			continue;
		memcpy(out + o, ext, el);
		o += el;
		out[o++] = '\n';
		out[o] = '\0';
		n++;
	}
	return n;
}
