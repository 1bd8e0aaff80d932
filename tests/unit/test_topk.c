/*
 * test_topk.c - the space-saving heavy hitters of topk.c against the
 * plain algorithm (a linear scan for the key, a linear scan for the first
 * smallest count), event by event: the same counters, in the same places,
 * with the same counts and error bounds, and the same top list. Streams:
 * skewed (a few heavy keys among many), all fresh (every event evicts),
 * and keys whose hashes collide whole or in the byte topk.c filters on.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "topk.h"

/* The reference: space-saving as the detector did it before topk.c. */
struct ref {
	int n;
	uint64_t h[TOPK_K], count[TOPK_K], err[TOPK_K];
	struct ipkey key[TOPK_K];
};

static void ref_add(struct ref *s, const struct ipkey *key, uint64_t h)
{
	int min = 0;

	for (int i = 0; i < s->n; i++)
		if (s->h[i] == h && memcmp(&s->key[i], key, sizeof(*key)) == 0) {
			s->count[i]++;
			return;
		}
	if (s->n < TOPK_K) {
		min = s->n++;
		s->count[min] = 0;
	} else {
		for (int i = 1; i < TOPK_K; i++)
			if (s->count[i] < s->count[min])
				min = i;
	}
	s->err[min] = s->count[min];
	s->h[min] = h;
	s->key[min] = *key;
	s->count[min]++;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct ipkey keyof(uint32_t v)
{
	struct ipkey k;

	memset(&k, 0, sizeof(k));
	memcpy(k.b + 12, &v, 4);
	return k;
}

/* hashof - mode 0: spread; 1: one byte of the hash shared (the filter's); 2: whole hash shared. */
static uint64_t hashof(uint32_t v, int mode)
{
	uint64_t h = (v + 1) * 0x9e3779b97f4a7c15ULL;

	if (mode == 1)
		h = (h & ~(UINT64_C(0xff) << 40)) | (UINT64_C(0x5a) << 40);
	if (mode == 2)
		h = 0x123456789abcdefULL;
	return h;
}

static int same(const struct topk *t, const struct ref *r)
{
	if (t->n != r->n)
		return 0;
	for (int i = 0; i < r->n; i++)
		if (t->h[i] != r->h[i] || t->count[i] != r->count[i] || t->err[i] != r->err[i] ||
		    memcmp(&t->key[i], &r->key[i], sizeof(r->key[i])) != 0)
			return 0;
	return 1;
}

static void run(const char *name, int mode, uint32_t keys, int heavy, int events)
{
	struct topk t;
	struct ref r;
	struct topk_item it[10];
	int bad = -1, n;

	topk_reset(&t);
	memset(&r, 0, sizeof(r));
	for (int e = 0; e < events; e++) {
		/* heavy: one event in two goes to one of 5 heavy keys. */
		uint32_t v =
		    heavy && (next() & 1) ? (uint32_t)(next() % 5) : (uint32_t)(next() % keys);
		struct ipkey k = keyof(v);

		topk_add(&t, &k, hashof(v, mode));
		ref_add(&r, &k, hashof(v, mode));
		if (bad < 0 && !same(&t, &r))
			bad = e;
	}
	CHECK(bad < 0, "%s: counters differ from the reference at event %d", name, bad);
	n = topk_top(&t, it, 10);
	CHECK(n == (r.n < 10 ? r.n : 10), "%s: %d in the top", name, n);
	for (int i = 1; i < n; i++)
		CHECK(it[i - 1].count >= it[i].count, "%s: top not sorted at %d", name, i);
	if (heavy && n > 0)
		CHECK(it[0].key.b[12] < 5 && it[0].key.b[13] == 0 && it[0].key.b[14] == 0 &&
			  it[0].key.b[15] == 0,
		      "%s: the heaviest is not a heavy key", name);
}

int main(void)
{
	struct topk t;
	struct topk_item it[10];
	struct ipkey a = keyof(1), b = keyof(2);

	run("skewed", 0, 100000, 1, 200000);
	run("fresh", 0, 4000000, 0, 200000);
	run("few keys", 0, 30, 0, 20000);
	run("filter byte shared", 1, 1000, 1, 100000);
	run("whole hash shared", 2, 200, 1, 50000);

	/* By hand: the certain count is count - err, the newcomer's error is the evicted count. */
	topk_reset(&t);
	for (int i = 0; i < TOPK_K; i++) {
		struct ipkey k = keyof(100 + (uint32_t)i);

		topk_add(&t, &k, hashof(100 + (uint32_t)i, 0));
		topk_add(&t, &k, hashof(100 + (uint32_t)i, 0));
	}
	topk_add(&t, &a, hashof(1, 0));
	CHECK(t.count[0] == 3 && t.err[0] == 2, "newcomer in counter 0: count %llu err %llu",
	      (unsigned long long)t.count[0], (unsigned long long)t.err[0]);
	topk_add(&t, &b, hashof(2, 0));
	CHECK(t.count[1] == 3 && t.err[1] == 2 && memcmp(&t.key[1], &b, sizeof(b)) == 0,
	      "second newcomer takes counter 1 (the first smallest)");
	CHECK(topk_top(&t, it, 10) == 10 && it[0].count == 2, "top: certain counts");
	return check_done("topk");
}
