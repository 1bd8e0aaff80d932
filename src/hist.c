/*
 * hist.c - Prometheus histograms with fixed buckets: observing a value is a
 * few compares and two additions, so DNS, the hand-off and the tarpit can
 * count every event. Rendering them is metrics.c's business; this module
 * knows nothing of the endpoint, so the modules that observe do not depend
 * on it.
 */
#include <string.h>

#include "hist.h"

const double hist_bounds_tarpit[] = {1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 280};
const int hist_nbounds_tarpit = (int)(sizeof(hist_bounds_tarpit) / sizeof(hist_bounds_tarpit[0]));
const double hist_bounds_latency[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				      0.25,  0.5,    1,	    2.5,  5,	 10};
const int hist_nbounds_latency =
    (int)(sizeof(hist_bounds_latency) / sizeof(hist_bounds_latency[0]));

void hist_init(struct hist *h, const double *bounds, int n)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = n < 0 ? 0 : n > HIST_MAX_BUCKETS ? HIST_MAX_BUCKETS : n;
}

void hist_observe(struct hist *h, double v)
{
	int i;

	/* A clock that stepped back must not make a negative or NaN sum. */
	if (!(v >= 0))
		v = 0;
	/* Prometheus buckets are "less or equal": v == bound belongs to it. */
	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}
