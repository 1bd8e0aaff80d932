/*
 * check.h - the smallest table-driven test harness: CHECK() records a
 * failure with file and line and goes on, check_done() prints the summary
 * and gives the exit status.
 */
#ifndef MXG_CHECK_H
#define MXG_CHECK_H

#include <stdio.h>

static int check_run, check_failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		check_run++;                                                                       \
		if (!(cond)) {                                                                     \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_run, check_failed);
	return check_failed ? 1 : 0;
}

#endif
