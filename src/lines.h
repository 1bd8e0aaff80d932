/*
 * lines.h - reading Postfix-style text files: main.cf-like configuration
 * and lookup tables. Comments ('#' as first non-blank) and blank lines are
 * skipped; a line that starts with white space continues the previous one.
 */
#ifndef MXG_LINES_H
#define MXG_LINES_H

#include <stdio.h>

#define LINES_MAX 4096

struct lines {
	FILE *fp;
	const char *path;
	int join;     /* continuation lines are joined (not for postgrey files) */
	int lineno;   /* physical lines read so far */
	int pending;  /* phys holds the next logical line's first line */
	int pending_no;
	char *buf;    /* getline's buffer: it reports NUL bytes, fgets cannot */
	size_t bufsz;
	char phys[LINES_MAX + 1];
	char logical[LINES_MAX + 1];
};

/* lines_init - read fp (named path in messages); join: see above. */
void lines_init(struct lines *lr, FILE *fp, const char *path, int join);

/* lines_trim - s without leading and trailing white space (in place). */
char *lines_trim(char *s);

/* lines_done - free the reader's buffer (the file stays open). */
void lines_done(struct lines *lr);

/*
 * lines_next - the next logical line, trimmed, in *line (valid until the
 * next call) and the number of its first physical line in *lineno. Returns
 * 1, 0 at the end, or -1 with "PATH:LINE: message" in err (line too long,
 * NUL byte, a continuation line with nothing to continue, read error).
 */
int lines_next(struct lines *lr, char **line, int *lineno, char *err, size_t errsz);

#endif
