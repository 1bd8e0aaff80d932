/*
 * hugemem.h - large zeroed arrays on transparent huge pages.
 *
 * For tables of megabytes read at random (the flood detector's): with
 * 4 kB pages nearly every read of such a table also misses the TLB, and
 * the walk of the page tables costs about as much as the cache miss
 * itself. Arrays below HUGEMEM_MIN come from calloc.
 */
#ifndef MXG_HUGEMEM_H
#define MXG_HUGEMEM_H

#include <stddef.h>

#define HUGEMEM_MIN ((size_t)2 << 20) /* one huge page on x86-64 */

/*
 * hugemem_calloc - n zeroed elements of size bytes, NULL on overflow or
 * no memory. From HUGEMEM_MIN bytes up the array is mapped on its own,
 * aligned to HUGEMEM_MIN and marked for huge pages (a hint: where the
 * kernel has none, 4 kB pages). Free it with hugemem_free and the same
 * n and size.
 */
void *hugemem_calloc(size_t n, size_t size);

/* hugemem_free - free p (NULL: nothing) from hugemem_calloc(n, size). */
void hugemem_free(void *p, size_t n, size_t size);

#endif
