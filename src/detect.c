/*
 * detect.c - the flood detector (see detect.h for the contract).
 *
 * Three structures bounded by the configuration, never by the input. They
 * start small and double on demand up to their bounds, so memory follows
 * the sources actually seen (hashing spreads even a few sources over every
 * page of a table, so a table allocated at its bound would be resident
 * almost at once):
 *
 * Per-source rates. A key table (ktab.c) of at most max_sources slots,
 * lazy: it doubles only once well filled, and at its bound a new source
 * evicts the stalest entry of its probe window, so a flood of fresh
 * addresses recycles the slots of sources not seen for the longest time
 * and a busy source, seen recently, stays. The
 * rate is the sliding-window counter of two fixed windows: the count of
 * the current window plus the previous window's count weighted by how much
 * of it still overlaps [now - W, now]. Two counters per source instead of
 * a ring of slots: the estimate is exact for a steady rate, an event
 * counts fully while in the current window and not at all after 2W.
 *
 * Distinct sources per group. Exact while that is affordable: a set of
 * 64-bit key hashes with their last-seen time (a collision of two 64-bit
 * hashes among exact_max keys is improbable enough to call the count
 * exact) in two-choice buckets, swept of entries older than the window;
 * the set doubles (rehashed by the stored hashes) at load three quarters
 * (or at a full pair of buckets), up to the size exact_max needs (load one
 * half at exact_max).
 * Once exact_max live sources do not fit, new ones are dropped from the
 * set and the count
 * comes from a HyperLogLog of 2^12 registers (1.6% standard error) for at
 * least one window after the last dropped source. So that the sketch can
 * slide, it is kept per sub-window of W/8 in a ring of 9 (so the union
 * covers at least the last W, at most 9W/8), and the union by register
 * maximum is kept incrementally with its harmonic sum: an event costs
 * O(1), a rotation O(ring x registers) every W/8.
 *
 * Attacks. NORMAL -> ATTACK at ddos_threshold, ATTACK -> CONVERGING below
 * ddos_release, back to ATTACK at the threshold again, CONVERGING ->
 * NORMAL after quiet_ms without reaching the release level (the gap
 * between the two levels and the quiet time keep a flood hovering around
 * the threshold from flapping). While an attack lasts (ATTACK or
 * CONVERGING) the group counts attempts, a HyperLogLog of all sources of
 * the attack, and space-saving heavy hitters for sources and prefixes.
 *
 * Known good. A key table (ktab.c), not lazy: key -> first and last time
 * marked; eviction by the oldest last mark.
 *
 * Cost. An event reads random lines of tables of megabytes: memory latency
 * is its price. So detect_group starts the loads of the exact set's
 * buckets and of the source table's window (detect_source comes next)
 * before it needs them; the large arrays sit on huge pages (hugemem.c).
 */
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "hugemem.h"
#include "ktab.h"
#include "topk.h"

#define HLL_BITS 12 /* 2^12 registers: 1.04/64 = 1.6% error */
#define HLL_M (1u << HLL_BITS)
#define HLL_RING 9		/* sub-windows kept: current + 8 full ones */
#define HLL_SUBS (HLL_RING - 1) /* sub-windows per window */
#define SWEEP_STEP 8		/* exact-set slots swept per event */
#define XBUCKET 8		/* exact-set bucket: 8 x 16 bytes, two cache lines */
#define XSET_MIN 256		/* exact-set slots at first (4 kB) */
#define XBLOCK 64		/* exact-set slots per block of the tick's sweep */

/* Exact distinct set: key hash (0: free) and last seen. */
struct xent {
	uint64_t h, t;
};

struct group {
	/* exact set */
	struct xent *x;
	uint32_t xcap, xn, xcursor;
	uint64_t *xold;	    /* per block of XBLOCK slots: no live entry is older (0: unknown) */
	int dropped;	    /* a new source did not fit ... */
	uint64_t last_drop; /* ... at this time */
	/* sliding HyperLogLog */
	uint8_t ring[HLL_RING][HLL_M];
	uint8_t uni[HLL_M]; /* max over the ring */
	double usum;	    /* sum of 2^-uni[j] */
	uint32_t uzeros;    /* uni[j] == 0 */
	uint64_t epoch;	    /* sub-window of ring[cur] */
	int cur;
	/* state machine */
	enum detect_state state;
	uint64_t since, quiet_from, attack_start, attack_end;
	uint32_t peak;
	uint32_t others; /* distinct sources other workers count (detect_set_others) */
	/* the current or last attack */
	uint64_t attempts;
	uint8_t ahll[HLL_M];
	struct topk top_src, top_pfx; /* space-saving heavy hitters */
};

struct detect {
	struct detect_cfg cfg;
	int ngroups;
	unsigned changed;
	uint64_t last_now; /* latest time seen, for detect_configure */
	uint64_t sub_ms;   /* HyperLogLog sub-window */
	/*
	 * src: t last event, u counts cur | prev << 32; good: t last mark,
	 * u first mark.
	 */
	struct ktab src, good;
	struct group *g;
};

/*
 * HyperLogLog.
 */

/* pow2neg - 2^-r for a register value r (at most 64 - HLL_BITS + 1). */
static double pow2neg(uint8_t r)
{
	return 1.0 / (double)(1ull << r);
}

/*
 * ln - natural logarithm of x >= 1, for linear counting; written here so
 * the core library need not link libm: x = 2^e * m with m in [1, 2),
 * ln m = 2 atanh((m - 1) / (m + 1)), a series with |z| <= 1/3.
 */
static double ln(double x)
{
	int e = 0;
	double z, z2, term, sum = 0;

	while (x >= 2.0) {
		x /= 2.0;
		e++;
	}
	z = (x - 1.0) / (x + 1.0);
	z2 = z * z;
	term = z;
	for (int k = 1; k < 40; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return e * 0.69314718055994530942 + 2.0 * sum;
}

static uint8_t hll_rank(uint64_t h)
{
	uint64_t w = h << HLL_BITS;

	return w == 0 ? (uint8_t)(64 - HLL_BITS + 1) : (uint8_t)(__builtin_clzll(w) + 1);
}

static uint32_t hll_index(uint64_t h)
{
	return (uint32_t)(h >> (64 - HLL_BITS));
}

/* hll_estimate - from the harmonic sum and the empty registers. */
static double hll_estimate(double sum, uint32_t zeros)
{
	const double m = HLL_M, alpha = 0.7213 / (1.0 + 1.079 / m);
	double e = alpha * m * m / sum;

	/* Small range: linear counting is the better estimate. */
	if (e <= 2.5 * m && zeros > 0)
		e = m * ln(m / zeros);
	return e;
}

static double hll_count(const uint8_t *reg)
{
	double sum = 0;
	uint32_t zeros = 0;

	for (uint32_t j = 0; j < HLL_M; j++) {
		sum += pow2neg(reg[j]);
		zeros += reg[j] == 0;
	}
	return hll_estimate(sum, zeros);
}

/*
 * Groups: the sliding sketch.
 */

/* group_union - recompute the union of the ring and its sum. */
static void group_union(struct group *g)
{
	memcpy(g->uni, g->ring[0], HLL_M);
	for (int r = 1; r < HLL_RING; r++)
		for (uint32_t j = 0; j < HLL_M; j++)
			if (g->ring[r][j] > g->uni[j])
				g->uni[j] = g->ring[r][j];
	g->usum = 0;
	g->uzeros = 0;
	for (uint32_t j = 0; j < HLL_M; j++) {
		g->usum += pow2neg(g->uni[j]);
		g->uzeros += g->uni[j] == 0;
	}
}

/* group_rotate - move the ring to the sub-window of now, clearing those it leaves. */
static void group_rotate(struct detect *d, struct group *g, uint64_t now)
{
	uint64_t epoch = now / d->sub_ms;

	if (epoch <= g->epoch)
		return;
	uint64_t steps = epoch - g->epoch;

	if (steps > HLL_RING)
		steps = HLL_RING;
	for (uint64_t s = 0; s < steps; s++) {
		g->cur = (g->cur + 1) % HLL_RING;
		memset(g->ring[g->cur], 0, HLL_M);
	}
	g->epoch = epoch;
	group_union(g);
}

static void group_hll_add(struct group *g, uint64_t h)
{
	uint32_t j = hll_index(h);
	uint8_t r = hll_rank(h);

	if (r > g->ring[g->cur][j])
		g->ring[g->cur][j] = r;
	if (r > g->uni[j]) {
		/* Keep the union's harmonic sum current: O(1) per event. */
		g->usum += pow2neg(r) - pow2neg(g->uni[j]);
		if (g->uni[j] == 0)
			g->uzeros--;
		g->uni[j] = r;
	}
}

/*
 * Groups: the exact set.
 */

static int xent_live(const struct detect *d, const struct xent *e, uint64_t now)
{
	return e->h != 0 && e->t + d->cfg.ddos_window_ms > now;
}

/*
 * xset_cap - the slots a set for exact_max may reach: load at most one
 * half when full, so a full pair of buckets stays improbable.
 */
static uint32_t xset_cap(uint32_t exact_max)
{
	uint64_t n = XSET_MIN;

	while (n < 2 * (uint64_t)exact_max)
		n <<= 1;
	return (uint32_t)n;
}

/*
 * xset_size - the slots to hold n hashes at load at most three quarters
 * (where group_exact_add doubles the set), up to the bound.
 */
static uint32_t xset_size(uint32_t n, uint32_t exact_max)
{
	uint32_t max = xset_cap(exact_max), cap = XSET_MIN;

	while (cap < max && cap / 4 * 3 < n)
		cap <<= 1;
	return cap;
}

/* group_sweep - clear expired entries of n (a multiple of 4) slots from the cursor. */
static void group_sweep(const struct detect *d, struct group *g, uint64_t now, uint32_t n)
{
	/* The slots 8 events on will sweep: the prefetcher misses a walk this slow. */
	for (uint32_t k = 0; k < n; k += 4)
		__builtin_prefetch(&g->x[(g->xcursor + 8 * n + k) & (g->xcap - 1)]);
	for (uint32_t k = 0; k < n; k++) {
		struct xent *e = &g->x[g->xcursor];

		if (e->h != 0 && !xent_live(d, e, now)) {
			e->h = 0;
			g->xn--;
		}
		if (++g->xcursor == g->xcap)
			g->xcursor = 0;
	}
}

/*
 * group_sweep_all - clear every expired entry (detect_tick), skipping the
 * blocks whose oldest entry cannot have expired yet (in a steady flood,
 * most: sweeping every slot each second cost a tenth of all the events'
 * time). A swept block notes its oldest live entry; an insert lowers the
 * mark to its time, refreshed or cleared entries leave it a lower bound.
 */
static void group_sweep_all(const struct detect *d, struct group *g, uint64_t now)
{
	uint64_t w = d->cfg.ddos_window_ms;

	for (uint32_t b = 0; b < g->xcap / XBLOCK; b++) {
		uint64_t old = UINT64_MAX;

		if (g->xold[b] > now || now - g->xold[b] < w)
			continue;
		for (uint32_t i = b * XBLOCK; i < (b + 1) * XBLOCK; i++) {
			struct xent *e = &g->x[i];

			if (e->h == 0)
				continue;
			if (!xent_live(d, e, now)) {
				e->h = 0;
				g->xn--;
			} else if (e->t < old) {
				old = e->t;
			}
		}
		g->xold[b] = old;
	}
}

/*
 * xset_put - place h (new to the set) with its time t in the set x of cap
 * slots, two-choice: the emptier of its two buckets. -1: both are full.
 */
static int xset_put(struct xent *x, uint32_t cap, uint64_t h, uint64_t t)
{
	uint32_t mask = (cap - 1) & ~(uint32_t)(XBUCKET - 1);
	uint32_t b[2], nfree[2] = {0, 0}, first_free[2] = {UINT32_MAX, UINT32_MAX};

	b[0] = (uint32_t)(h >> 32) & mask;
	b[1] = (uint32_t)h & mask;
	for (int k = 0; k < 2; k++)
		for (uint32_t i = b[k]; i < b[k] + XBUCKET; i++)
			if (x[i].h == 0 && nfree[k]++ == 0)
				first_free[k] = i;
	int k = nfree[1] > nfree[0];

	if (nfree[k] == 0)
		return -1;
	x[first_free[k]].h = h;
	x[first_free[k]].t = t;
	return 0;
}

/*
 * group_exact_grow - move the live entries of g's set into one of at
 * least cap slots (rehashed by the stored hash, so no key is needed);
 * should a pair of buckets overflow, double again. At the bound, entries
 * that do not fit are dropped and the exact count is not trusted for a
 * window. -1: no memory, g unchanged.
 */
static int group_exact_grow(struct detect *d, struct group *g, uint32_t cap)
{
	uint32_t max = xset_cap(d->cfg.exact_max), n;
	struct xent *nx;
	uint64_t *nold;

	for (;;) {
		int lost = 0;

		nx = hugemem_calloc(cap, sizeof(*nx));
		/* The blocks' marks start unknown (0): the next tick sweeps them all. */
		nold = calloc(cap / XBLOCK, sizeof(*nold));
		if (nx == NULL || nold == NULL) {
			hugemem_free(nx, cap, sizeof(*nx));
			free(nold);
			return -1;
		}
		n = 0;
		for (uint32_t i = 0; i < g->xcap && !lost; i++) {
			if (!xent_live(d, &g->x[i], d->last_now))
				continue;
			if (n < d->cfg.exact_max && xset_put(nx, cap, g->x[i].h, g->x[i].t) == 0)
				n++;
			else if (cap < max)
				lost = 1;
			else {
				g->dropped = 1;
				g->last_drop = d->last_now;
			}
		}
		if (!lost)
			break;
		hugemem_free(nx, cap, sizeof(*nx));
		free(nold);
		cap <<= 1;
	}
	hugemem_free(g->x, g->xcap, sizeof(*g->x));
	free(g->xold);
	g->x = nx;
	g->xold = nold;
	g->xcap = cap;
	g->xn = n;
	g->xcursor = 0;
	return 0;
}

/* group_exact_prefetch - start loading the two buckets of h. */
static inline __attribute__((always_inline)) void group_exact_prefetch(const struct group *g,
								       uint64_t h)
{
	uint32_t mask = (g->xcap - 1) & ~(uint32_t)(XBUCKET - 1);

	h = h ? h : 1;
	__builtin_prefetch(&g->x[(uint32_t)(h >> 32) & mask]);
	__builtin_prefetch(&g->x[((uint32_t)(h >> 32) & mask) + XBUCKET / 2]);
	__builtin_prefetch(&g->x[(uint32_t)h & mask]);
	__builtin_prefetch(&g->x[((uint32_t)h & mask) + XBUCKET / 2]);
}

/*
 * group_exact_add - note h at now. The set is two-choice hashing with
 * buckets of XBUCKET: h may sit in either of two buckets and a new hash
 * goes to the emptier one; at the load kept at the bound (one half) a
 * full pair of buckets is rare enough (none in 20 million trial inserts)
 * that "exact below exact_max" holds in practice, where single
 * linear-probe windows overflowed a few times in ten thousand. The set
 * starts small and doubles before a new hash would take its load above
 * three quarters, or finds its pair of buckets full (below the bound a
 * full pair costs a doubling, never a hash), up to the size exact_max
 * needs. Growing at one half held two to four slots per source. A new hash
 * takes a free or expired slot while fewer than exact_max are held;
 * otherwise it is dropped and the exact count is not trusted for a window.
 */
static void group_exact_add(struct detect *d, struct group *g, uint64_t h, uint64_t now)
{
	uint32_t mask = (g->xcap - 1) & ~(uint32_t)(XBUCKET - 1);
	uint32_t b[2], slot = UINT32_MAX, nfree[2] = {0, 0}, first_free[2];

	h = h ? h : 1;
	b[0] = (uint32_t)(h >> 32) & mask;
	b[1] = (uint32_t)h & mask;
	for (int k = 0; k < 2; k++) {
		first_free[k] = UINT32_MAX;
		for (uint32_t i = b[k]; i < b[k] + XBUCKET; i++) {
			struct xent *e = &g->x[i];

			if (e->h == h) {
				e->t = now;
				return;
			}
			if (e->h == 0) {
				if (nfree[k]++ == 0)
					first_free[k] = i;
			} else if (slot == UINT32_MAX && !xent_live(d, e, now)) {
				slot = i; /* expired: reuse, the count does not change */
			}
		}
	}
	if (slot == UINT32_MAX) {
		int k = nfree[1] > nfree[0];

		if (g->xn < d->cfg.exact_max && g->xcap < xset_cap(d->cfg.exact_max) &&
		    (g->xn >= g->xcap / 4 * 3 || nfree[k] == 0) &&
		    group_exact_grow(d, g, g->xcap * 2) == 0) {
			/* h is not in the set: place it in the larger one. */
			group_exact_add(d, g, h, now);
			return;
		}
		if (nfree[k] == 0 || g->xn >= d->cfg.exact_max) {
			g->dropped = 1;
			g->last_drop = now;
			return;
		}
		slot = first_free[k];
		g->xn++;
	}
	g->x[slot].h = h;
	g->x[slot].t = now;
	if (g->xold[slot / XBLOCK] > now)
		g->xold[slot / XBLOCK] = now;
}

/* group_exact_valid - no source was dropped from the set within the window. */
static int group_exact_valid(const struct detect *d, const struct group *g, uint64_t now)
{
	return !g->dropped || g->last_drop + d->cfg.ddos_window_ms <= now;
}

/* group_distinct - the distinct sources of the window, cheaply (per event). */
static uint32_t group_distinct(const struct detect *d, const struct group *g, uint64_t now)
{
	double e;

	if (group_exact_valid(d, g, now))
		return g->xn;
	e = hll_estimate(g->usum, g->uzeros);
	return e > g->xn ? (e >= UINT32_MAX ? UINT32_MAX : (uint32_t)(e + 0.5)) : g->xn;
}

/*
 * group_total - the distinct sources the state machine sees: this
 * detector's and, with several workers, the others' (each network goes to
 * one worker, so their sets do not overlap and the counts add up).
 */
static uint32_t group_total(const struct detect *d, const struct group *g, uint64_t now)
{
	uint32_t n = group_distinct(d, g, now);

	return n > UINT32_MAX - g->others ? UINT32_MAX : n + g->others;
}

/*
 * Groups: the attack report.
 */

static void group_attack_begin(struct group *g, uint64_t now)
{
	g->attack_start = now;
	g->attack_end = 0;
	g->attempts = 0;
	g->peak = 0;
	memset(g->ahll, 0, sizeof(g->ahll));
	topk_reset(&g->top_src);
	topk_reset(&g->top_pfx);
}

static void group_attack_add(const struct detect *d, struct group *g, const struct ipkey *key,
			     uint64_t h)
{
	struct ipkey pfx = *key;
	uint32_t j = hll_index(h);
	uint8_t r = hll_rank(h);

	g->attempts++;
	if (r > g->ahll[j])
		g->ahll[j] = r;
	topk_add(&g->top_src, key, h);
	netaddr_key_prefix(&pfx, netaddr_key_is_v4(key) ? d->cfg.prefix_v4 : d->cfg.prefix_v6);
	topk_add(&g->top_pfx, &pfx, netaddr_key_hash(&pfx));
}

/* group_step - advance g's state machine with distinct n at now. */
static void group_step(struct detect *d, int gi, uint32_t n, uint64_t now)
{
	struct group *g = &d->g[gi];
	enum detect_state old = g->state;

	switch (g->state) {
	case DETECT_NORMAL:
		if (n >= d->cfg.ddos_threshold) {
			group_attack_begin(g, now);
			g->state = DETECT_ATTACK;
		}
		break;
	case DETECT_ATTACK:
		if (n < d->cfg.ddos_release) {
			g->state = DETECT_CONVERGING;
			g->quiet_from = now;
		}
		break;
	case DETECT_CONVERGING:
		if (n >= d->cfg.ddos_threshold) {
			g->state = DETECT_ATTACK;
		} else if (n >= d->cfg.ddos_release) {
			/* Rose again without reaching the threshold: not quiet. */
			g->quiet_from = now;
		} else if (now >= g->quiet_from && now - g->quiet_from >= d->cfg.quiet_ms) {
			g->state = DETECT_NORMAL;
			g->attack_end = now;
		}
		break;
	}
	if (g->state != DETECT_NORMAL && n > g->peak)
		g->peak = n;
	if (g->state != old) {
		g->since = now;
		d->changed |= 1u << gi;
	}
}

/*
 * The interface.
 */

static void detect_sanitize(struct detect_cfg *c)
{
	if (c->src_window_ms == 0)
		c->src_window_ms = 1;
	if (c->ddos_window_ms == 0)
		c->ddos_window_ms = 1;
	if (c->ddos_threshold == 0)
		c->ddos_threshold = 1;
	/* The release level must lie below the threshold, or nothing converges. */
	if (c->ddos_release >= c->ddos_threshold)
		c->ddos_release = c->ddos_threshold - 1;
	if (c->exact_max == 0)
		c->exact_max = 1;
	if (c->prefix_v4 < 0 || c->prefix_v4 > 32)
		c->prefix_v4 = 24;
	if (c->prefix_v6 < 0 || c->prefix_v6 > 128)
		c->prefix_v6 = 64;
}

static uint64_t detect_sub_ms(const struct detect_cfg *c)
{
	uint64_t s = (c->ddos_window_ms + HLL_SUBS - 1) / HLL_SUBS;

	return s ? s : 1;
}

struct detect *detect_new(const struct detect_cfg *cfg, int ngroups)
{
	struct detect *d;

	if (ngroups < 1 || ngroups > DETECT_MAX_GROUPS)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->cfg = *cfg;
	detect_sanitize(&d->cfg);
	d->ngroups = ngroups;
	d->sub_ms = detect_sub_ms(&d->cfg);
	/*
	 * The rates are lazy: a lost count restarts from 1. The good marks
	 * are not: losing one would refuse a known client.
	 */
	if (ktab_init(&d->src, d->cfg.max_sources, 1) < 0 ||
	    ktab_init(&d->good, d->cfg.good_max, 0) < 0 ||
	    (d->g = calloc((size_t)ngroups, sizeof(*d->g))) == NULL) {
		detect_free(&d);
		return NULL;
	}
	for (int i = 0; i < ngroups; i++) {
		d->g[i].xcap = xset_size(0, d->cfg.exact_max);
		if ((d->g[i].x = hugemem_calloc(d->g[i].xcap, sizeof(*d->g[i].x))) == NULL ||
		    (d->g[i].xold = calloc(d->g[i].xcap / XBLOCK, sizeof(*d->g[i].xold))) == NULL) {
			detect_free(&d);
			return NULL;
		}
		group_union(&d->g[i]);
	}
	return d;
}

/*
 * group_exact_resize - a new exact_max: move the live entries into a set
 * sized for them under the new bound (it grows on demand from there).
 */
static void group_exact_resize(struct detect *d, struct group *g)
{
	uint32_t live = 0, cap;

	for (uint32_t i = 0; i < g->xcap; i++)
		live += xent_live(d, &g->x[i], d->last_now);
	cap = xset_size(live, d->cfg.exact_max);
	/*
	 * The same size, all still counted: nothing to gain (a rehash could
	 * even meet a full pair of buckets and double). No memory: keep the
	 * old set; the count is still right.
	 */
	if (cap != g->xcap || live > d->cfg.exact_max)
		(void)group_exact_grow(d, g, cap);
}

void detect_configure(struct detect *d, const struct detect_cfg *cfg)
{
	struct detect_cfg old = d->cfg;

	d->cfg = *cfg;
	detect_sanitize(&d->cfg);
	/* No memory for a new size: keep the old table and its bound. */
	if (ktab_setmax(&d->src, d->cfg.max_sources) < 0)
		d->cfg.max_sources = old.max_sources;
	if (ktab_setmax(&d->good, d->cfg.good_max) < 0)
		d->cfg.good_max = old.good_max;
	if (d->cfg.exact_max != old.exact_max)
		for (int i = 0; i < d->ngroups; i++)
			group_exact_resize(d, &d->g[i]);
	if (d->cfg.ddos_window_ms != old.ddos_window_ms) {
		/*
		 * Sub-windows change length: the ring keeps its registers
		 * and ages them out from the latest time seen.
		 */
		d->sub_ms = detect_sub_ms(&d->cfg);
		for (int i = 0; i < d->ngroups; i++)
			d->g[i].epoch = d->last_now / d->sub_ms;
	}
}

uint32_t detect_source(struct detect *d, const struct ipkey *key, uint64_t now)
{
	uint64_t h = netaddr_key_hash(key), w = d->cfg.src_window_ms;
	uint64_t ep = now / w;
	int isnew;
	/* An entry last seen before the previous window counts nothing. */
	uint32_t i = ktab_get(&d->src, key, h, ep > 0 ? (ep - 1) * w : 0, &isnew);
	struct kent *e = &d->src.ent[i];
	uint32_t cur = (uint32_t)e->u, prev = (uint32_t)(e->u >> 32);

	if (now > d->last_now)
		d->last_now = now;
	if (!isnew && e->t / w != ep) {
		/* The entry's windows are older: shift them to now's. */
		prev = e->t / w + 1 == ep ? cur : 0;
		cur = 0;
	}
	if (isnew || now > e->t)
		e->t = now;
	if (cur < UINT32_MAX)
		cur++;
	e->u = (uint64_t)cur | (uint64_t)prev << 32;
	/* The part of the previous window still inside [now - w, now]. */
	uint64_t est = cur + (uint64_t)prev * (w - now % w) / w;

	return est > UINT32_MAX ? UINT32_MAX : (uint32_t)est;
}

void detect_source_forget(struct detect *d, const struct ipkey *key)
{
	int64_t i = ktab_find(&d->src, key, netaddr_key_hash(key));

	if (i >= 0)
		ktab_remove(&d->src, (uint32_t)i);
}

enum detect_state detect_group(struct detect *d, int gi, const struct ipkey *key, uint64_t now)
{
	struct group *g;
	uint64_t h;

	if (gi < 0 || gi >= d->ngroups)
		return DETECT_NORMAL;
	g = &d->g[gi];
	h = netaddr_key_hash(key);
	if (now > d->last_now)
		d->last_now = now;
	/* Start the misses (see Cost above); detect_source asks about key next. */
	group_exact_prefetch(g, h);
	ktab_prefetch(&d->src, h);
	group_rotate(d, g, now);
	group_hll_add(g, h);
	group_exact_add(d, g, h, now);
	group_sweep(d, g, now, SWEEP_STEP);
	group_step(d, gi, group_total(d, g, now), now);
	if (g->state != DETECT_NORMAL)
		group_attack_add(d, g, key, h);
	return g->state;
}

void detect_tick(struct detect *d, uint64_t now)
{
	if (now > d->last_now)
		d->last_now = now;
	for (int i = 0; i < d->ngroups; i++) {
		struct group *g = &d->g[i];

		group_rotate(d, g, now);
		if (g->xn > 0)
			group_sweep_all(d, g, now);
		group_step(d, i, group_total(d, g, now), now);
	}
}

void detect_set_others(struct detect *d, int gi, uint32_t n)
{
	if (gi >= 0 && gi < d->ngroups)
		d->g[gi].others = n;
}

uint32_t detect_distinct(const struct detect *d, int gi, uint64_t now)
{
	return gi >= 0 && gi < d->ngroups ? group_distinct(d, &d->g[gi], now) : 0;
}

unsigned detect_changed(struct detect *d)
{
	unsigned m = d->changed;

	d->changed = 0;
	return m;
}

enum detect_state detect_state_of(const struct detect *d, int g)
{
	return g >= 0 && g < d->ngroups ? d->g[g].state : DETECT_NORMAL;
}

/*
 * report_top - the heaviest of t into out (DETECT_TOP), by the count each
 * is certain to have: a notice must not claim that a source seen once
 * sent dozens of connections.
 */
static int report_top(const struct topk *t, struct detect_top *out)
{
	struct topk_item it[DETECT_TOP];
	int n = topk_top(t, it, DETECT_TOP);

	for (int i = 0; i < n; i++) {
		out[i].key = it[i].key;
		out[i].count = it[i].count;
	}
	return n;
}

void detect_report(const struct detect *d, int gi, uint64_t now, struct detect_report *r)
{
	const struct group *g;
	uint64_t exact = 0;
	double est;

	memset(r, 0, sizeof(*r));
	if (gi < 0 || gi >= d->ngroups)
		return;
	g = &d->g[gi];
	r->state = g->state;
	r->since_ms = g->since;
	r->attack_start_ms = g->attack_start;
	r->attack_end_ms = g->attack_end;
	r->peak_distinct = g->peak;
	r->attempts = g->attempts;

	/*
	 * The distinct count now, precisely (a report is rare): live entries
	 * of the set, or the union of the sub-windows still in the window.
	 */
	for (uint32_t i = 0; i < g->xcap; i++)
		exact += xent_live(d, &g->x[i], now);
	if (group_exact_valid(d, g, now)) {
		r->distinct = (uint32_t)exact;
	} else {
		uint8_t uni[HLL_M] = {0};
		uint64_t ep = now / d->sub_ms;

		for (int k = 0; k < HLL_RING; k++) {
			int slot = (g->cur - k + HLL_RING) % HLL_RING;

			if (g->epoch < (uint64_t)k || g->epoch - (uint64_t)k + HLL_SUBS < ep)
				break;
			for (uint32_t j = 0; j < HLL_M; j++)
				if (g->ring[slot][j] > uni[j])
					uni[j] = g->ring[slot][j];
		}
		est = hll_count(uni);
		r->distinct = est > exact ? (uint32_t)(est + 0.5) : (uint32_t)exact;
	}
	r->distinct = r->distinct > UINT32_MAX - g->others ? UINT32_MAX : r->distinct + g->others;
	if (g->attack_start != 0 || g->attempts != 0) {
		est = hll_count(g->ahll);
		r->sources = (uint64_t)(est + 0.5);
		if (r->sources > g->attempts)
			r->sources = g->attempts;
		r->ntop_sources = report_top(&g->top_src, r->top_sources);
		r->ntop_prefixes = report_top(&g->top_pfx, r->top_prefixes);
	}
}

void detect_good_mark(struct detect *d, const struct ipkey *key, uint64_t now)
{
	int isnew;
	/* Good marks do not expire: only the bound makes them give way. */
	uint32_t i = ktab_get(&d->good, key, netaddr_key_hash(key), 0, &isnew);

	if (isnew)
		d->good.ent[i].u = now; /* the first mark decides good_before */
	d->good.ent[i].t = now;
	if (now > d->last_now)
		d->last_now = now;
}

int detect_good_before(const struct detect *d, int g, const struct ipkey *key)
{
	int64_t i = ktab_find(&d->good, key, netaddr_key_hash(key));

	if (i < 0)
		return 0;
	if (g < 0 || g >= d->ngroups || d->g[g].state == DETECT_NORMAL)
		return 1;
	/*
	 * Equal times count as before: the daemon passes the event loop's
	 * cached clock, and a session that ended in the very loop round where
	 * the flood crossed the threshold was in good standing before it.
	 */
	return d->good.ent[i].u <= d->g[g].attack_start;
}

int detect_good_within(const struct detect *d, const struct ipkey *net, int bits)
{
	/* A walk of the good table: for the rare decision to block a network. */
	for (uint32_t i = 0; i < d->good.n; i++)
		if (d->good.tag[i] != 0 && netaddr_key_within(&d->good.ent[i].key, net, bits))
			return 1;
	return 0;
}

size_t detect_memory(const struct detect *d)
{
	size_t n = sizeof(*d) + ktab_memory(&d->src) + ktab_memory(&d->good);

	for (int i = 0; i < d->ngroups; i++)
		n += sizeof(d->g[i]) + (size_t)d->g[i].xcap * sizeof(*d->g[i].x) +
		     (size_t)d->g[i].xcap / XBLOCK * sizeof(*d->g[i].xold);
	return n;
}

const char *detect_state_name(enum detect_state s)
{
	switch (s) {
	case DETECT_NORMAL:
		return "normal";
	case DETECT_ATTACK:
		return "attack";
	case DETECT_CONVERGING:
		return "converging";
	}
	return "?";
}

void detect_free(struct detect **dp)
{
	struct detect *d = *dp;

	if (d == NULL)
		return;
	ktab_free(&d->src);
	ktab_free(&d->good);
	if (d->g != NULL)
		for (int i = 0; i < d->ngroups; i++) {
			hugemem_free(d->g[i].x, d->g[i].xcap, sizeof(*d->g[i].x));
			free(d->g[i].xold);
		}
	free(d->g);
	free(d);
	*dp = NULL;
}
