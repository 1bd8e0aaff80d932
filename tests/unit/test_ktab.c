/*
 * test_ktab.c - the detector's key table (ktab.c): a lazy table (the
 * per-source rates) and a strict one (the good marks) hold 9,000 keys
 * without losing one in 16,384 slots (they fill to about 3/4 before they
 * double, moving entries aside when a probe window is full; growing at
 * half load took 32,768), every key stays findable in its window after
 * the moves, removal frees its slot, and at the bound the table stays at
 * its size and the newest key is kept.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ktab.h"

/* keyn - the n-th synthetic IPv4 source, from 11.0.0.0 on. */
static struct ipkey keyn(uint32_t n)
{
	struct ipkey k;

	n += 11u << 24;
	memset(&k, 0, sizeof(k));
	k.b[10] = k.b[11] = 0xff;
	k.b[12] = (uint8_t)(n >> 24);
	k.b[13] = (uint8_t)(n >> 16);
	k.b[14] = (uint8_t)(n >> 8);
	k.b[15] = (uint8_t)n;
	return k;
}

/* fill - insert keys [from, to) at times from..to (none expires); new ones. */
static uint32_t fill(struct ktab *t, uint32_t from, uint32_t to)
{
	uint32_t fresh = 0;
	int isnew;

	for (uint32_t v = from; v < to; v++) {
		struct ipkey k = keyn(v);
		uint32_t i = ktab_get(t, &k, netaddr_key_hash(&k), 0, &isnew);

		t->ent[i].t = 1 + v;
		t->ent[i].u = v;
		fresh += isnew;
	}
	return fresh;
}

/* found - keys of [from, to) findable, with their own values. */
static uint32_t found(const struct ktab *t, uint32_t from, uint32_t to)
{
	uint32_t n = 0;

	for (uint32_t v = from; v < to; v++) {
		struct ipkey k = keyn(v);
		int64_t i = ktab_find(t, &k, netaddr_key_hash(&k));

		n += i >= 0 && t->ent[i].u == v;
	}
	return n;
}

static void test_fill(int lazy)
{
	struct ktab t;
	uint32_t n;

	CHECK(ktab_init(&t, 1u << 20, lazy) == 0, "init");
	CHECK(t.n == KTAB_MIN, "starts at %u slots", t.n);
	CHECK((n = fill(&t, 0, 9000)) == 9000, "lazy %d: %u new of 9000", lazy, n);
	/*
	 * Half load (8,192) is passed: growing there would take 32,768 slots.
	 * Filling on, the table doubles at 3/4 (12,288), or earlier should
	 * moving entries aside fail (in 200 trials, never before 10,500).
	 */
	CHECK(t.n == 16384, "lazy %d: %u slots for 9000 keys", lazy, t.n);
	CHECK((n = found(&t, 0, 9000)) == 9000, "lazy %d: %u of 9000 found", lazy, n);
	CHECK(t.used == 9000, "lazy %d: %u used", lazy, t.used);
	CHECK(ktab_memory(&t) == 16384 * (sizeof(uint16_t) + sizeof(struct kent)), "memory %zu",
	      ktab_memory(&t));
	/* Repeats are found, not added. */
	CHECK((n = fill(&t, 0, 9000)) == 0, "lazy %d: %u repeats taken for new", lazy, n);
	/* On to 40,000: it keeps growing, and keeps them all. */
	fill(&t, 9000, 40000);
	CHECK((n = found(&t, 0, 40000)) >= (lazy ? 40000 - 40 : 40000),
	      "lazy %d: %u of 40000 found", lazy, n);
	CHECK(t.n <= 131072, "lazy %d: %u slots for 40000 keys", lazy, t.n);
	ktab_free(&t);
	ktab_free(&t);
}

static void test_remove(void)
{
	struct ktab t;
	struct ipkey k = keyn(7);
	int64_t i;

	CHECK(ktab_init(&t, 4096, 1) == 0, "init");
	fill(&t, 0, 100);
	i = ktab_find(&t, &k, netaddr_key_hash(&k));
	CHECK(i >= 0, "key 7 present");
	if (i >= 0)
		ktab_remove(&t, (uint32_t)i);
	CHECK(ktab_find(&t, &k, netaddr_key_hash(&k)) < 0, "key 7 removed");
	CHECK(t.used == 99, "%u used after a removal", t.used);
	CHECK(found(&t, 0, 100) == 99, "the others stay");
	ktab_free(&t);
}

static void test_bound(void)
{
	struct ktab t;
	size_t mem;
	uint32_t n;

	CHECK(ktab_init(&t, 4096, 1) == 0, "init");
	fill(&t, 0, 4000);
	CHECK(t.n == 4096, "%u slots at the bound", t.n);
	mem = ktab_memory(&t);
	/* A flood of fresh keys: the table stays, the stalest give way. */
	fill(&t, 4000, 100000);
	CHECK(t.n == 4096 && ktab_memory(&t) == mem, "grew past the bound: %u slots", t.n);
	CHECK(t.used <= t.n, "%u used of %u", t.used, t.n);
	CHECK((n = found(&t, 99990, 100000)) == 10, "the newest kept: %u of 10", n);
	/* A lower bound shrinks at once; the newest keys mostly stay. */
	CHECK(ktab_setmax(&t, 1024) == 0, "setmax");
	CHECK(t.n == 1024 && t.used <= 1024, "%u slots, %u used after shrinking", t.n, t.used);
	CHECK((n = found(&t, 99990, 100000)) == 10, "the newest kept after shrinking: %u", n);
	ktab_free(&t);
}

int main(void)
{
	test_fill(1);
	test_fill(0);
	test_remove();
	test_bound();
	return check_done("ktab");
}
