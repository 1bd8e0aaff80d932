/*
 * fuzz_file.h - what the targets that feed files to a loader share: an
 * in-memory file for the whole run (no disk, no unlink per input) and the
 * check of the "PATH:LINE: message" errors every file reader gives.
 * Header-only: each target is one translation unit.
 */
#ifndef MXG_FUZZ_FILE_H
#define MXG_FUZZ_FILE_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* fuzz_memfile - a memory file named name; its /proc path into path. */
static inline int fuzz_memfile(const char *name, char *path, size_t pathsz)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0)
		abort();
	snprintf(path, pathsz, "/proc/self/fd/%d", fd);
	return fd;
}

/* fuzz_put - make p[0..n) the whole content of the memory file fd. */
static inline void fuzz_put(int fd, const void *p, size_t n)
{
	if (ftruncate(fd, 0) < 0 || pwrite(fd, p, n, 0) != (ssize_t)n)
		abort();
}

/*
 * fuzz_err_after - err must be NUL-terminated within errsz (else trap).
 * When it starts with "path:", returns what follows the line number (its
 * digits and one ':' skipped when present) and sets *line when digits and
 * that ':' were both there; otherwise NULL.
 */
static inline const char *fuzz_err_after(const char *err, size_t errsz, const char *path, int *line)
{
	size_t pl = strlen(path);
	const char *p;
	int digits = 0;

	if (memchr(err, '\0', errsz) == NULL)
		__builtin_trap();
	*line = 0;
	if (strncmp(err, path, pl) != 0 || err[pl] != ':')
		return NULL;
	p = err + pl + 1;
	while (isdigit((unsigned char)*p)) {
		p++;
		digits = 1;
	}
	if (*p == ':') {
		p++;
		*line = digits;
	}
	return p;
}

#endif
