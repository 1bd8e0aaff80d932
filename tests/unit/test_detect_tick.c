/*
 * test_detect_tick.c - detect_tick's sweep of the exact distinct set,
 * which skips blocks whose oldest entry cannot have expired: right after
 * every tick the distinct count of a group equals the sources seen within
 * the window, counted here from each source's last time, while sources
 * come back, expire and are replaced, over steady traffic, bursts and
 * quiet gaps longer than the window.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect.h"

#define NKEYS 20000
#define WINDOW 60000

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct ipkey keyn(uint32_t n)
{
	struct ipkey k;

	memset(&k, 0, sizeof(k));
	k.b[10] = k.b[11] = 0xff;
	n += 11u << 24;
	memcpy(k.b + 12, &n, 4);
	return k;
}

int main(void)
{
	struct detect_cfg c = {
	    .src_window_ms = 10000,
	    .max_sources = 65536,
	    .ddos_window_ms = WINDOW,
	    .ddos_threshold = 1000000, /* no attack: only the count matters */
	    .ddos_release = 1,
	    .quiet_ms = 1000,
	    .exact_max = 65536,
	    .good_max = 1024,
	    .prefix_v4 = 24,
	    .prefix_v6 = 64,
	};
	static uint64_t last[NKEYS];
	struct detect *d = detect_new(&c, 1);
	uint64_t now = 1000000, next_tick = now + 1000;
	int ticks = 0, bad = 0, gaps = 0;
	uint32_t most = 0;

	if (d == NULL) {
		fprintf(stderr, "detect_new: no memory\n");
		return 1;
	}
	for (int ev = 0; ev < 2000000 && ticks < 1200; ev++) {
		/* Mostly steady, sometimes a burst (no time passes), sometimes a long gap. */
		uint64_t r = next() % 100000;

		now += r < 2 ? 30000 + next() % 60000 : r < 30000 ? 0 : next() % 4;
		gaps += r < 2 && now - (next_tick - 1000) >= WINDOW;
		while (now >= next_tick) {
			uint32_t want = 0, got;

			detect_tick(d, next_tick);
			for (uint32_t k = 0; k < NKEYS; k++)
				want += last[k] != 0 && last[k] + WINDOW > next_tick;
			got = detect_distinct(d, 0, next_tick);
			if (want > most)
				most = want;
			if (got != want && bad++ < 5)
				CHECK(got == want,
				      "tick %d at %llu: distinct %u, sources in the window %u",
				      ticks, (unsigned long long)next_tick, got, want);
			ticks++;
			next_tick += 1000;
		}
		/* A few thousand regulars and a long tail: some return within the window. */
		uint32_t k =
		    next() % 4 == 0 ? (uint32_t)(next() % 2000) : (uint32_t)(next() % NKEYS);
		struct ipkey key = keyn(k);

		detect_group(d, 0, &key, now);
		last[k] = now;
	}
	printf("detect_tick: %d ticks, %d gaps, at most %u sources in the window\n", ticks, gaps,
	       most);
	CHECK(most >= NKEYS / 2, "at most %u sources in the window", most);
	CHECK(ticks >= 1200, "only %d ticks", ticks);
	CHECK(gaps >= 2, "only %d gaps longer than the window", gaps);
	CHECK(bad == 0, "%d ticks of %d with a wrong count", bad, ticks);
	detect_free(&d);
	return check_done("detect_tick");
}
