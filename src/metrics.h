/*
 * metrics.h - counters, gauges and histograms, and the Prometheus text
 * endpoint that exposes them (metrics_listen, off by default).
 *
 * The counters themselves live where they are counted (struct mxg_stats,
 * struct listener_stats); this module only renders them. A histogram is a
 * fixed array of buckets so that observing a value costs a few compares.
 */
#ifndef MXG_METRICS_H
#define MXG_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct mxg;

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

/*
 * metrics_start - serve GET /metrics on mxg->cfg->metrics_listen ("ip:port")
 * when it is set; the socket is bound before privileges are dropped
 * (metrics_open) and served once the loop runs (metrics_start). Both
 * return 0 (also when metrics are off), or -1 with a message in err.
 */
int metrics_open(struct mxg *mxg, char *err, size_t errsz);
int metrics_start(struct mxg *mxg, char *err, size_t errsz);

/* What metrics_parse_request made of a request. */
enum metrics_req {
	METRICS_REQ_SCRAPE,    /* GET /metrics (a query string allowed): 200 */
	METRICS_REQ_BAD,       /* not "METHOD SP target SP HTTP/1.x": 400 */
	METRICS_REQ_METHOD,    /* a method other than GET: 405 */
	METRICS_REQ_NOT_FOUND, /* another path: 404 */
};

/* The part of a request that metrics_parse_request looks at, plus one. */
#define METRICS_LINE_MAX 512

/*
 * metrics_parse_request - classify a request from its first len bytes
 * (head need not be NUL-terminated; only its first line, cut at CR or LF
 * and at a NUL byte, and only its first METRICS_LINE_MAX - 1 bytes, are
 * looked at). The bytes are a network client's: anything is allowed.
 * Pure: no I/O, no allocation. Returns an enum metrics_req.
 */
int metrics_parse_request(const char *head, size_t len);

/* metrics_close - stop serving; free everything. */
void metrics_close(struct mxg *mxg);

#endif
