/*
 * lines.c - logical lines of Postfix-style files.
 *
 * One reader for mxguard.conf and for the list files, so that both treat
 * comments, continuation lines, overlong lines and stray bytes the same
 * way, and report them the same way ("PATH:LINE: message"). A logical line
 * is only known to be complete when the next non-continuation line (or the
 * end) is seen, so that next line is kept in phys for the following call.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lines.h"

void lines_init(struct lines *lr, FILE *fp, const char *path, int join)
{
	memset(lr, 0, sizeof(*lr));
	lr->fp = fp;
	lr->path = path;
	lr->join = join;
}

/* lines_read - one physical line into phys; 1, 0 at the end, -1 on error. */
static int lines_read(struct lines *lr, char *err, size_t errsz)
{
	ssize_t n;

	errno = 0;
	if ((n = getline(&lr->buf, &lr->bufsz, lr->fp)) < 0) {
		if (ferror(lr->fp) || errno == ENOMEM) {
			snprintf(err, errsz, "%s: read error: %s", lr->path, strerror(errno));
			return -1;
		}
		return 0;
	}
	lr->lineno++;
	if (n > 0 && lr->buf[n - 1] == '\n')
		lr->buf[--n] = '\0';
	if (n > 0 && lr->buf[n - 1] == '\r')
		lr->buf[--n] = '\0';
	if (memchr(lr->buf, '\0', (size_t)n) != NULL) {
		snprintf(err, errsz, "%s:%d: NUL byte in line", lr->path, lr->lineno);
		return -1;
	}
	if ((size_t)n > LINES_MAX) {
		snprintf(err, errsz, "%s:%d: line longer than %d bytes", lr->path, lr->lineno,
			 LINES_MAX);
		return -1;
	}
	memcpy(lr->phys, lr->buf, (size_t)n + 1);
	return 1;
}

void lines_done(struct lines *lr)
{
	free(lr->buf);
	lr->buf = NULL;
	lr->bufsz = 0;
}

char *lines_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int lines_next(struct lines *lr, char **line, int *lineno, char *err, size_t errsz)
{
	int rc;

	/* Find the first line of the next logical line. */
	while (!lr->pending) {
		char *t;

		if ((rc = lines_read(lr, err, errsz)) <= 0)
			return rc;
		t = lines_trim(lr->phys);
		if (*t == '#' || *t == '\0')
			continue;
		if (lr->join && t != lr->phys) {
			snprintf(err, errsz, "%s:%d: continuation line without a line to continue",
				 lr->path, lr->lineno);
			return -1;
		}
		memmove(lr->phys, t, strlen(t) + 1);
		lr->pending = 1;
		lr->pending_no = lr->lineno;
	}
	snprintf(lr->logical, sizeof(lr->logical), "%s", lr->phys);
	*lineno = lr->pending_no;
	lr->pending = 0;
	/* Collect continuation lines until the next line that is not one. */
	while ((rc = lines_read(lr, err, errsz)) > 0) {
		char *t = lines_trim(lr->phys);

		if (*t == '#' || *t == '\0')
			continue;
		if (!lr->join || t == lr->phys) {
			memmove(lr->phys, t, strlen(t) + 1);
			lr->pending = 1;
			lr->pending_no = lr->lineno;
			break;
		}
		if (strlen(lr->logical) + 1 + strlen(t) > LINES_MAX) {
			snprintf(err, errsz, "%s:%d: logical line longer than %d bytes", lr->path,
				 *lineno, LINES_MAX);
			return -1;
		}
		strcat(lr->logical, " ");
		strcat(lr->logical, t);
	}
	if (rc < 0)
		return -1;
	*line = lr->logical;
	return 1;
}
