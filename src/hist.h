/*
 * hist.h - a Prometheus histogram with fixed upper bounds: a fixed array of
 * buckets, so that observing a value costs a few compares. metrics.c
 * renders them.
 */
#ifndef MXG_HIST_H
#define MXG_HIST_H

#include <stdint.h>

#define HIST_MAX_BUCKETS 16

/* A Prometheus histogram with fixed upper bounds (seconds). */
struct hist {
	const double *bounds; /* nbounds ascending upper bounds; +Inf is implicit */
	int nbounds;
	uint64_t counts[HIST_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
	uint64_t count;
	double sum;
};

/* Bucket sets shared by the daemon's histograms. */
extern const double hist_bounds_tarpit[]; /* 1 s .. 280 s: when clients give up */
extern const int hist_nbounds_tarpit;
extern const double hist_bounds_latency[]; /* 1 ms .. 10 s: DNS and backend */
extern const int hist_nbounds_latency;

/* hist_init - an empty histogram over bounds[0..n) (n <= HIST_MAX_BUCKETS). */
void hist_init(struct hist *h, const double *bounds, int n);

/* hist_observe - count one value v (seconds). */
void hist_observe(struct hist *h, double v);

#endif
