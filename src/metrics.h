/*
 * metrics.h - counters, gauges and histograms, and the Prometheus text
 * endpoint that exposes them (metrics_listen, off by default).
 *
 * The counters themselves live where they are counted (struct mxg_stats,
 * struct listener_stats, the histograms of hist.h); this module only
 * renders them.
 */
#ifndef MXG_METRICS_H
#define MXG_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct mxg;
struct netaddr;

/*
 * metrics_listen_parse - the metrics_listen value ("ip:port", numeric as
 * every listener) into addr, as metrics_open reads it. Returns 0, or -1
 * with "metrics_listen: ..." in err.
 */
int metrics_listen_parse(const char *text, struct netaddr *addr, char *err, size_t errsz);

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
