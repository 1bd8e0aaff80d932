/*
 * test_detect.c - the flood detector with synthetic events and time:
 * sliding per-source counts, eviction under a flood of fresh addresses
 * with memory unchanged, distinct counts exact below exact_max and a
 * HyperLogLog estimate within a few percent above it, the attack state
 * machine with its hysteresis and quiet period, the report's heavy
 * hitters, known-good-before semantics, reconfiguration, and tables that
 * start small and grow with the sources seen up to their bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect.h"

/* key4 - the key of a.b.c.d. */
static struct ipkey key4(unsigned a, unsigned b, unsigned c, unsigned d)
{
	struct ipkey k;

	memset(&k, 0, sizeof(k));
	k.b[10] = k.b[11] = 0xff;
	k.b[12] = (uint8_t)a;
	k.b[13] = (uint8_t)b;
	k.b[14] = (uint8_t)c;
	k.b[15] = (uint8_t)d;
	return k;
}

/* keyn - the n-th synthetic IPv4 source, from 11.0.0.0 on. */
static struct ipkey keyn(uint32_t n)
{
	n += 11u << 24;
	return key4(n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

static struct detect_cfg base_cfg(void)
{
	struct detect_cfg c = {
	    .src_window_ms = 1000,
	    .max_sources = 1024,
	    .ddos_window_ms = 10000,
	    .ddos_threshold = 1000000000,
	    .ddos_release = 500000000,
	    .quiet_ms = 30000,
	    .exact_max = 4096,
	    .good_max = 1024,
	    .prefix_v4 = 24,
	    .prefix_v6 = 64,
	};
	return c;
}

static struct detect *make(const struct detect_cfg *c, int ngroups)
{
	struct detect *d = detect_new(c, ngroups);

	CHECK(d != NULL, "detect_new");
	if (d == NULL)
		exit(check_done("detect"));
	return d;
}

static uint32_t distinct(const struct detect *d, int g, uint64_t now)
{
	struct detect_report r;

	detect_report(d, g, now, &r);
	return r.distinct;
}

static void test_window(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d = make(&c, 1);
	struct ipkey a = key4(192, 0, 2, 1), b = key4(192, 0, 2, 2);
	uint32_t n;

	/* Within one window every attempt counts fully. */
	for (uint32_t i = 1; i <= 5; i++)
		CHECK((n = detect_source(d, &a, 10000 + i)) == i, "attempt %u counted %u", i, n);
	CHECK((n = detect_source(d, &a, 10500)) == 6, "6th: %u", n);
	CHECK((n = detect_source(d, &b, 10500)) == 1, "another key is apart: %u", n);
	/* Half-way into the next window, the previous one weighs one half. */
	CHECK((n = detect_source(d, &a, 11500)) == 1 + 3, "sliding: %u", n);
	/* 999 ms into the one after, the previous (1 attempt) weighs 1/1000. */
	CHECK((n = detect_source(d, &a, 12999)) == 1, "slid out: %u", n);
	/* Long after, only this one. */
	CHECK((n = detect_source(d, &a, 60000)) == 1, "expired: %u", n);

	/* A steady 100 per window is counted as 100, wherever the window ends. */
	for (uint64_t t = 100000; t < 105000; t += 10) {
		n = detect_source(d, &b, t);
		if (t >= 101000)
			CHECK(n >= 99 && n <= 101, "steady rate at %llu: %u", (unsigned long long)t,
			      n);
	}

	/* Forgetting starts the count over. */
	detect_source_forget(d, &b);
	CHECK((n = detect_source(d, &b, 105000)) == 1, "forgotten: %u", n);
	detect_free(&d);
	CHECK(d == NULL, "detect_free clears the pointer");
}

static void test_eviction(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey hot = key4(198, 51, 100, 7), k;
	size_t mem;
	uint32_t n = 0, hotn = 0, fresh = 0;

	c.src_window_ms = 3600000;
	d = make(&c, 1);
	mem = detect_memory(d);
	CHECK(mem >= 1024 * 32, "memory %zu covers the table", mem);
	CHECK(mem < 1024 * 64 + 1024 * 64 + 2 * 1024 * 1024, "memory %zu bounded", mem);

	/* 100,000 fresh sources through 1,024 slots, a busy one among them. */
	for (uint32_t i = 0; i < 100000; i++) {
		k = keyn(i);
		detect_source(d, &k, 1000 + i);
		if (i % 8 == 0) {
			n = detect_source(d, &hot, 1000 + i);
			hotn++;
			CHECK(n == hotn, "busy source lost its count: %u != %u", n, hotn);
			if (n != hotn)
				break;
		}
	}
	CHECK(detect_memory(d) == mem, "memory grew: %zu -> %zu", mem, detect_memory(d));
	/* The oldest sources gave way to the newer ones. */
	for (uint32_t i = 0; i < 100; i++) {
		k = keyn(i);
		fresh += detect_source(d, &k, 200000) == 1;
	}
	CHECK(fresh >= 95, "old sources still held: only %u of 100 evicted", fresh);
	/* The newest ones are still there. */
	k = keyn(99999);
	CHECK((n = detect_source(d, &k, 200001)) == 2, "newest source evicted: %u", n);
	detect_free(&d);
}

static void test_distinct(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d = make(&c, 2);
	struct ipkey k;
	size_t mem = detect_memory(d);
	uint32_t n;
	double err;

	/* Below exact_max: exact, repeats not counted, groups apart. */
	for (uint32_t i = 0; i < 3000; i++) {
		k = keyn(i);
		detect_group(d, 0, &k, 1000);
		detect_group(d, 0, &k, 1001);
	}
	detect_tick(d, 2000);
	CHECK((n = distinct(d, 0, 2000)) == 3000, "exact: %u", n);
	CHECK((n = distinct(d, 1, 2000)) == 0, "other group: %u", n);

	/* The window slides: half of them again later, the rest ages out. */
	for (uint32_t i = 0; i < 1500; i++) {
		k = keyn(i);
		detect_group(d, 0, &k, 6000);
	}
	for (uint32_t i = 5000; i < 5500; i++) {
		k = keyn(i);
		detect_group(d, 0, &k, 6000);
	}
	detect_tick(d, 10999);
	CHECK((n = distinct(d, 0, 10999)) == 3500, "before the window ends: %u", n);
	detect_tick(d, 11001);
	CHECK((n = distinct(d, 0, 11001)) == 2000, "after the first ones left: %u", n);
	detect_tick(d, 16001);
	CHECK((n = distinct(d, 0, 16001)) == 0, "all gone: %u", n);

	/* Above exact_max (4096): 200,000 in one window, an estimate. */
	for (uint32_t i = 0; i < 200000; i++) {
		k = keyn(100000 + i);
		detect_group(d, 1, &k, 100000 + i / 40);
	}
	detect_tick(d, 105001);
	n = distinct(d, 1, 105001);
	err = ((double)n - 200000.0) / 200000.0;
	/*
	 * 4,096 registers: a standard error of 1.6%; the hash seed changes with
	 * every run, so the bound is 5 of them (6% failed about once in 100 runs).
	 */
	CHECK(err > -0.08 && err < 0.08, "estimate %u for 200000 (%.2f%%)", n, err * 100);
	/* The sets grew (from a few kB) to their bound for exact_max, no further. */
	CHECK(detect_memory(d) > mem, "sets did not grow: %zu", detect_memory(d));
	CHECK(detect_memory(d) <= mem + 2 * 8192 * 16, "memory %zu above the bound (from %zu)",
	      detect_memory(d), mem);
	mem = detect_memory(d);
	for (uint32_t i = 0; i < 50000; i++) {
		k = keyn(400000 + i);
		detect_group(d, 1, &k, 105001);
	}
	CHECK(detect_memory(d) == mem, "memory grew at the bound: %zu -> %zu", mem,
	      detect_memory(d));
	printf("detect: 200000 distinct estimated as %u (%+.2f%%)\n", n, err * 100);

	/* Once they left and a window passed without drops: exact again. */
	detect_tick(d, 120000);
	for (uint32_t i = 0; i < 1234; i++) {
		k = keyn(i);
		detect_group(d, 1, &k, 120000);
	}
	detect_tick(d, 121000);
	CHECK((n = distinct(d, 1, 121000)) == 1234, "exact again: %u", n);
	detect_free(&d);
}

/* feed - n distinct sources from first on group 0 at now; the last state. */
static enum detect_state feed(struct detect *d, uint32_t first, uint32_t n, uint64_t now)
{
	enum detect_state s = DETECT_NORMAL;

	for (uint32_t i = first; i < first + n; i++) {
		struct ipkey k = keyn(i);

		s = detect_group(d, 0, &k, now);
	}
	return s;
}

static void test_states(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct detect_report r;
	enum detect_state s;
	uint64_t t, normal_at = 0, start;
	unsigned m;

	c.ddos_threshold = 100;
	c.ddos_release = 50;
	c.exact_max = 1000;
	d = make(&c, 2);

	CHECK(strcmp(detect_state_name(DETECT_CONVERGING), "converging") == 0, "name");
	CHECK((s = feed(d, 0, 99, 1000)) == DETECT_NORMAL, "99 sources: %s", detect_state_name(s));
	CHECK(detect_changed(d) == 0, "no change yet");
	CHECK((s = feed(d, 99, 1, 1000)) == DETECT_ATTACK, "100 sources: %s", detect_state_name(s));
	CHECK((m = detect_changed(d)) == 1, "group 0 changed: %#x", m);
	CHECK((m = detect_changed(d)) == 0, "mask cleared: %#x", m);
	CHECK(detect_state_of(d, 1) == DETECT_NORMAL, "group 1 untouched");
	feed(d, 100, 200, 2000);

	/* Hysteresis: between release and threshold the attack goes on. */
	detect_tick(d, 11500); /* the first 100 left, 200 remain */
	CHECK(detect_state_of(d, 0) == DETECT_ATTACK, "200 left");
	feed(d, 1000, 60, 11500);
	detect_tick(d, 12001); /* 60 remain: >= release */
	CHECK(detect_state_of(d, 0) == DETECT_ATTACK, "60 >= release: %s",
	      detect_state_name(detect_state_of(d, 0)));
	CHECK(detect_changed(d) == 0, "no change within the hysteresis");

	/* Below release: converging. */
	detect_tick(d, 21501);
	CHECK(detect_state_of(d, 0) == DETECT_CONVERGING, "0 < release: %s",
	      detect_state_name(detect_state_of(d, 0)));
	CHECK(detect_changed(d) == 1, "converging reported");
	detect_report(d, 0, 21501, &r);
	start = r.attack_start_ms;
	CHECK(start == 1000, "attack start %llu", (unsigned long long)start);
	CHECK(r.peak_distinct == 300, "peak %u", r.peak_distinct);
	CHECK(r.attack_end_ms == 0, "not over yet");

	/* Back above the threshold: the same attack again. */
	CHECK((s = feed(d, 2000, 100, 25000)) == DETECT_ATTACK, "rose again: %s",
	      detect_state_name(s));
	CHECK(detect_changed(d) == 1, "attack again reported");
	detect_report(d, 0, 25000, &r);
	CHECK(r.attack_start_ms == start, "the same attack");
	CHECK(r.since_ms == 25000, "since %llu", (unsigned long long)r.since_ms);

	/*
	 * Converging from 35001; 60 sources at 40000 (>= release, < threshold)
	 * restart the quiet period, which runs from the last tick that still
	 * saw them (49001; they leave at 50000): normal at 49001 + quiet_ms.
	 */
	for (t = 26000; t <= 100000; t += 1000) {
		if (t == 40000)
			feed(d, 3000, 60, t);
		detect_tick(d, t + 1);
		if (detect_state_of(d, 0) == DETECT_NORMAL) {
			normal_at = t + 1;
			break;
		}
		if (t + 1 >= 35001 && t + 1 < 49001 + c.quiet_ms)
			CHECK(detect_state_of(d, 0) == DETECT_CONVERGING, "at %llu: %s",
			      (unsigned long long)t + 1, detect_state_name(detect_state_of(d, 0)));
	}
	CHECK(normal_at == 49001 + c.quiet_ms, "normal at %llu", (unsigned long long)normal_at);
	CHECK((m = detect_changed(d)) == 1, "changes reported: %#x", m);
	detect_report(d, 0, normal_at, &r);
	CHECK(r.state == DETECT_NORMAL && r.attack_end_ms == normal_at, "attack ended at %llu",
	      (unsigned long long)r.attack_end_ms);
	CHECK(r.attack_start_ms == start, "the last attack is still reported");
	detect_free(&d);
}

static void test_report(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct detect_report r;
	struct ipkey heavy = key4(203, 0, 113, 9), net, k;
	uint64_t attempts = 0;
	char buf[64];
	double err;

	c.ddos_threshold = 100;
	c.ddos_release = 50;
	d = make(&c, 1);
	feed(d, 0, 100, 1000); /* the 100th starts the attack */
	attempts = 1;
	/* 2000 one-off sources, a heavy source, a busy /24 of 50 hosts. */
	for (uint32_t i = 0; i < 2000; i++) {
		k = keyn(10000 + i * 256); /* each in a /24 of its own */
		detect_group(d, 0, &k, 2000);
		detect_group(d, 0, &heavy, 2000);
		attempts += 2;
		if (i % 2 == 0) {
			k = key4(198, 18, 7, 1 + i % 100);
			detect_group(d, 0, &k, 2000);
			attempts++;
		}
	}
	detect_report(d, 0, 2000, &r);
	CHECK(r.state == DETECT_ATTACK, "attack");
	CHECK(r.attempts == attempts, "attempts %llu != %llu", (unsigned long long)r.attempts,
	      (unsigned long long)attempts);
	err = ((double)r.sources - 2051.0) / 2051.0;
	CHECK(err > -0.1 && err < 0.1, "sources %llu for 2051", (unsigned long long)r.sources);
	CHECK(r.ntop_sources == DETECT_TOP, "ntop_sources %d", r.ntop_sources);
	CHECK(memcmp(&r.top_sources[0].key, &heavy, sizeof(heavy)) == 0, "top source %s",
	      netaddr_key_format(&r.top_sources[0].key, buf, sizeof(buf)));
	CHECK(r.top_sources[0].count >= 2000, "heavy count %llu",
	      (unsigned long long)r.top_sources[0].count);
	for (int i = 1; i < r.ntop_sources; i++)
		CHECK(r.top_sources[i].count <= r.top_sources[i - 1].count, "sorted at %d", i);
	/* By prefix: the heavy source's /24, then the busy /24 (1000 attempts). */
	net = key4(198, 18, 7, 0);
	CHECK(r.ntop_prefixes >= 2, "ntop_prefixes %d", r.ntop_prefixes);
	CHECK(memcmp(&r.top_prefixes[1].key, &net, sizeof(net)) == 0, "second prefix %s",
	      netaddr_key_format(&r.top_prefixes[1].key, buf, sizeof(buf)));
	CHECK(r.top_prefixes[1].count >= 1000, "prefix count %llu",
	      (unsigned long long)r.top_prefixes[1].count);
	net = key4(203, 0, 113, 0);
	CHECK(memcmp(&r.top_prefixes[0].key, &net, sizeof(net)) == 0, "first prefix %s",
	      netaddr_key_format(&r.top_prefixes[0].key, buf, sizeof(buf)));
	detect_free(&d);
}

static void test_good(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey a = key4(192, 0, 2, 10), b = key4(192, 0, 2, 11), n = key4(192, 0, 2, 12), k;
	size_t mem;
	uint32_t kept = 0;

	c.ddos_threshold = 100;
	c.ddos_release = 50;
	c.quiet_ms = 1000;
	d = make(&c, 2);
	detect_good_mark(d, &a, 500);
	CHECK(detect_good_before(d, 0, &a), "marked, normal");
	CHECK(!detect_good_before(d, 0, &n), "never marked");
	feed(d, 0, 100, 1000);
	CHECK(detect_state_of(d, 0) == DETECT_ATTACK, "attack");
	detect_good_mark(d, &b, 2000);
	CHECK(detect_good_before(d, 0, &a), "marked before the attack");
	CHECK(!detect_good_before(d, 0, &b), "marked during the attack");
	CHECK(detect_good_before(d, 1, &b), "group 1 is normal");
	detect_good_mark(d, &a, 2500);
	CHECK(detect_good_before(d, 0, &a), "a second mark keeps the first");
	/* The attack ends; the next one finds b good. */
	detect_tick(d, 11001);
	detect_tick(d, 12001);
	CHECK(detect_state_of(d, 0) == DETECT_NORMAL, "over: %s",
	      detect_state_name(detect_state_of(d, 0)));
	CHECK(detect_good_before(d, 0, &b), "normal again");
	feed(d, 5000, 100, 20000);
	CHECK(detect_state_of(d, 0) == DETECT_ATTACK, "second attack");
	CHECK(detect_good_before(d, 0, &b), "marked before the second attack");

	/* Bounded: 20,000 marks in a set of 1,024. */
	mem = detect_memory(d);
	for (uint32_t i = 0; i < 20000; i++) {
		k = keyn(i);
		detect_good_mark(d, &k, 30000 + i);
	}
	CHECK(detect_memory(d) == mem, "memory grew");
	for (uint32_t i = 19000; i < 20000; i++) {
		k = keyn(i);
		kept += detect_good_before(d, 1, &k);
	}
	CHECK(kept >= 700, "recent marks kept: %u of 1000", kept);
	detect_free(&d);
}

static void test_configure(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey a = key4(192, 0, 2, 20), k;
	size_t mem, mem2;
	uint32_t n, kept;

	CHECK(detect_new(&c, 0) == NULL, "0 groups refused");
	CHECK(detect_new(&c, DETECT_MAX_GROUPS + 1) == NULL, "too many groups refused");
	c.src_window_ms = 60000;
	d = make(&c, 1);
	mem = detect_memory(d);
	for (int i = 0; i < 5; i++)
		detect_source(d, &a, 1000);
	for (uint32_t i = 0; i < 700; i++) {
		k = keyn(i);
		detect_group(d, 0, &k, 1000);
	}
	detect_tick(d, 1000);

	/*
	 * Grow: a higher bound allocates nothing at once (the tables grow on
	 * demand), counts are kept, new limits apply, and more sources than
	 * the old bound are then held.
	 */
	c.max_sources = 4096;
	c.good_max = 4096;
	c.exact_max = 8192;
	c.ddos_threshold = 500;
	c.ddos_release = 200;
	mem = detect_memory(d);
	detect_configure(d, &c);
	mem2 = detect_memory(d);
	CHECK(mem2 <= mem, "a higher bound allocated: %zu -> %zu", mem, mem2);
	CHECK((n = detect_source(d, &a, 1001)) == 6, "count kept: %u", n);
	CHECK((n = distinct(d, 0, 1001)) == 700, "distinct kept: %u", n);
	detect_tick(d, 1002);
	CHECK(detect_state_of(d, 0) == DETECT_ATTACK, "new threshold applies: %s",
	      detect_state_name(detect_state_of(d, 0)));
	for (uint32_t i = 0; i < 1500; i++) {
		k = keyn(20000 + i);
		detect_source(d, &k, 1002);
		detect_group(d, 0, &k, 1002);
	}
	kept = 0;
	for (uint32_t i = 0; i < 1500; i++) {
		k = keyn(20000 + i);
		kept += detect_source(d, &k, 1003) == 2;
	}
	/*
	 * More than the old bound (1024), well below the new one: the table
	 * grew past it (a lazy table may let a few counts of crowded windows
	 * go before it is half full).
	 */
	CHECK(kept >= 1490, "1500 sources under a bound of 4096: %u kept", kept);
	CHECK((n = distinct(d, 0, 1003)) == 2200, "distinct under the new exact_max: %u", n);
	mem2 = detect_memory(d);
	CHECK(mem2 > mem, "memory did not grow: %zu -> %zu", mem, mem2);
	CHECK(mem2 <= mem + 4096 * 34 * 2 + 16384 * 16, "memory %zu above the new bound", mem2);

	/* Shrink: less memory, the bound holds, 2200 no longer counted exactly. */
	c.max_sources = 256;
	c.exact_max = 300;
	detect_configure(d, &c);
	mem = detect_memory(d);
	CHECK(mem < mem2, "shrunk: %zu", mem);
	for (uint32_t i = 0; i < 5000; i++) {
		k = keyn(50000 + i);
		detect_source(d, &k, 2000 + i);
	}
	CHECK(detect_memory(d) == mem, "memory grew after shrinking: %zu", detect_memory(d));
	CHECK((n = distinct(d, 0, 1004)) >= 2050 && n <= 2350, "distinct %u: estimated near 2200",
	      n);
	detect_free(&d);
}

/*
 * test_growth - at the daemon's sizes the tables start small and grow with
 * the sources seen, roughly linearly, losing none below the bounds, and
 * stop at the bounds: 2 x 262144 key slots (32 bytes and a 16-bit tag) and
 * two exact sets of 131072 16-byte slots (load one half for 65536).
 */
static void test_growth(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey k;
	size_t mem0, mem, prev, per, maxper = 0, bound, at[20];
	uint32_t n, kept, good, nat = 0, marks[20];

	c.src_window_ms = 10000;
	c.max_sources = 262144;
	c.ddos_window_ms = 60000;
	c.exact_max = 65536;
	c.good_max = 262144;
	d = make(&c, 2);
	mem0 = detect_memory(d);
	printf("detect: %zu bytes after detect_new at the daemon's sizes\n", mem0);
	CHECK(mem0 < 512 * 1024, "memory %zu at start: not small", mem0);
	bound = mem0 + 2 * (size_t)262144 * 34 + 2 * (size_t)131072 * 16;

	/* 60,000 sources (below every bound): none lost, memory follows. */
	prev = mem0;
	for (uint32_t i = 0; i < 60000; i++) {
		k = keyn(i);
		detect_source(d, &k, 1000 + i / 100);
		detect_group(d, 0, &k, 1000 + i / 100);
		detect_good_mark(d, &k, 1000 + i / 100);
		if ((i + 1) % 3000 == 0) {
			mem = detect_memory(d);
			CHECK(mem >= prev, "memory shrank: %zu -> %zu", prev, mem);
			/*
			 * Per source: two key tables, which double at the first
			 * full probe window (a load of 1/4 or more, so at least
			 * 1/8 after doubling), and a set of load 1/4 to 1/2.
			 */
			per = (mem - mem0) / (i + 1);
			CHECK(per <= 8 * 34 * 2 + 4 * 16, "%zu bytes per source at %u", per, i + 1);
			if (per > maxper)
				maxper = per;
			if (nat < 20) {
				marks[nat] = i + 1;
				at[nat++] = mem;
			}
			prev = mem;
		}
	}
	/* Roughly linear: 20 times the sources, at least 8 times the memory. */
	CHECK(at[19] - mem0 >= 8 * (at[0] - mem0), "memory at %u: %zu, at %u: %zu", marks[0], at[0],
	      marks[19], at[19]);
	printf("detect: memory %zu at %u sources, %zu at %u (%zu bytes per source, at most %zu)\n",
	       at[0], marks[0], at[19], marks[19], (at[19] - mem0) / marks[19], maxper);
	kept = good = 0;
	for (uint32_t i = 0; i < 60000; i++) {
		k = keyn(i);
		kept += detect_source(d, &k, 1000 + i / 100) == 2;
		good += detect_good_before(d, 0, &k);
	}
	/*
	 * The source table is lazy: below half load a crowded window whose
	 * entries could not move aside lets its stalest count go (rare).
	 * Good marks are never lost below the bound.
	 */
	CHECK(kept >= 60000 - 60, "source counts lost below the bound: %u of 60000 kept", kept);
	CHECK(good == 60000, "good marks lost below the bound: %u of 60000 kept", good);
	CHECK((n = distinct(d, 0, 1600)) == 60000, "exact after growing: %u", n);

	/* 600,000 more: every table at its bound, and no further. */
	for (uint32_t i = 60000; i < 660000; i++) {
		k = keyn(i);
		detect_source(d, &k, 2000 + i / 100);
		detect_group(d, (int)(i % 2), &k, 2000 + i / 100);
		detect_good_mark(d, &k, 2000 + i / 100);
		if (i == 400000)
			prev = detect_memory(d);
	}
	mem = detect_memory(d);
	printf("detect: memory %zu at 660000 sources (bound %zu)\n", mem, bound);
	CHECK(mem <= bound, "memory %zu above the bound %zu", mem, bound);
	CHECK(mem == prev, "memory grew at the bound: %zu -> %zu", prev, mem);
	CHECK(mem >= bound - mem0, "tables short of their bound: %zu", mem);
	detect_free(&d);
}

/*
 * test_churn - sources that come and go: an entry whose count has expired
 * is reused before the source table doubles, so memory follows the
 * sources of the window, not every source ever seen.
 */
static void test_churn(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey k;
	size_t mem0, mem;

	c.max_sources = 262144;
	c.src_window_ms = 1000;
	d = make(&c, 1);
	mem0 = detect_memory(d);
	/* 100,000 sources, 250 a second, each seen for 0.8 s. */
	for (uint32_t i = 0; i < 100000; i++) {
		k = keyn(i);
		detect_source(d, &k, 1000 + (uint64_t)i * 4);
		k = keyn(i >= 200 ? i - 200 : i);
		detect_source(d, &k, 1000 + (uint64_t)i * 4);
	}
	mem = detect_memory(d);
	printf("detect: churn of 100000 sources, about 500 live: %zu -> %zu bytes\n", mem0, mem);
	CHECK(mem <= mem0 + 7 * 1024 * 34, "source table grew to %zu for about 500 live", mem);
	detect_free(&d);
}

/*
 * test_exact_fill - a group's exact set fills to 3/4 before it doubles:
 * 9,000 sources take 16,384 slots (growing at half load took 32,768), and
 * are all counted.
 */
static void test_exact_fill(void)
{
	struct detect_cfg c = base_cfg();
	struct detect *d;
	struct ipkey k;
	size_t mem0, grown;
	uint32_t n;

	c.exact_max = 65536;
	d = make(&c, 1);
	mem0 = detect_memory(d);
	for (uint32_t i = 0; i < 9000; i++) {
		k = keyn(i);
		detect_group(d, 0, &k, 1000);
	}
	grown = detect_memory(d) - mem0;
	/* 256 slots at first; now at most 16,384 of 16 bytes (and their blocks' marks). */
	CHECK(grown <= (16384 - 256) * 16 + 16384 / 64 * 8, "exact set grew by %zu bytes for 9000",
	      grown);
	detect_tick(d, 1001);
	CHECK((n = distinct(d, 0, 1001)) == 9000, "exact: %u", n);
	detect_free(&d);
}

int main(void)
{
	test_window();
	test_eviction();
	test_distinct();
	test_states();
	test_report();
	test_good();
	test_configure();
	test_growth();
	test_churn();
	test_exact_fill();
	return check_done("detect");
}
