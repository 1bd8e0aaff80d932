/*
 * hugemem.c - large zeroed arrays on transparent huge pages (see hugemem.h).
 *
 * A mapping of the length rounded up to a huge page plus one more, of
 * which the aligned middle is kept and the ends are given back: the
 * kernel backs a range with huge pages only where it is aligned. A table
 * this large, hashed into, is resident whole within a few thousand keys
 * anyway, so the huge pages add no memory that 4 kB pages would not take.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hugemem.h"

static size_t hugemem_round(size_t len)
{
	return (len + HUGEMEM_MIN - 1) & ~(HUGEMEM_MIN - 1);
}

void *hugemem_calloc(size_t n, size_t size)
{
	size_t len = n * size;
	char *p, *a;

	if (size != 0 && len / size != n)
		return NULL;
	if (len < HUGEMEM_MIN)
		return calloc(n, size);
	if (len > SIZE_MAX - 2 * HUGEMEM_MIN)
		return NULL;
	len = hugemem_round(len);
	p = mmap(NULL, len + HUGEMEM_MIN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + HUGEMEM_MIN - 1) & ~(uintptr_t)(HUGEMEM_MIN - 1));
	/* Give back the ends outside the aligned range (the tail is never empty). */
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + len, (size_t)(p + HUGEMEM_MIN - a));
#ifdef MADV_HUGEPAGE
	(void)madvise(a, len, MADV_HUGEPAGE); /* a hint: refused, the pages stay 4 kB */
#endif
	return a;
}

void hugemem_free(void *p, size_t n, size_t size)
{
	size_t len = n * size;

	if (p == NULL)
		return;
	if (len < HUGEMEM_MIN)
		free(p);
	else
		munmap(p, hugemem_round(len));
}
