/*
 * test_wshm.c - what the workers share (wshm.c), and where a source goes
 * (listen_worker_of): the ring between processes (order, a worker's own
 * lines skipped, a reader that fell behind, too long a line), the sums
 * over the slots (counters, histograms, listeners; a dead worker's open
 * connections and distinct sources left out, its counters kept), the
 * engine text read whole, and the reuseport hash (a network on one worker,
 * networks spread over all).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "listen.h"
#include "mxguard.h"
#include "wshm.h"

static char got[64][WSHM_MSG_MAX];
static int ngot;

static void collect(const char *msg, void *arg)
{
	(void)arg;
	if (ngot < 64)
		snprintf(got[ngot++], sizeof(got[0]), "%s", msg);
}

static void test_ring(void)
{
	char err[256], big[WSHM_MSG_MAX + 8];
	struct wshm *w = wshm_new(3, 1, err, sizeof(err));
	uint64_t next1, next2, lost;
	pid_t pid;
	int status;

	CHECK(w != NULL, "wshm_new: %s", err);
	if (w == NULL)
		return;
	next1 = next2 = wshm_head(w);
	CHECK(wshm_post(w, 0, "block 192.0.2.1") == 0, "post");
	CHECK(wshm_post(w, 1, "ctl add white 198.51.100.0/24") == 0, "post");
	CHECK(wshm_post(w, 0, "reload") == 0, "post");
	ngot = 0;
	lost = wshm_poll(w, 1, &next1, collect, NULL);
	CHECK(lost == 0 && ngot == 2, "worker 1 gets the two lines of worker 0: %d", ngot);
	CHECK(ngot == 2 && strcmp(got[0], "block 192.0.2.1") == 0 && strcmp(got[1], "reload") == 0,
	      "in order, its own skipped");
	ngot = 0;
	wshm_poll(w, 2, &next2, collect, NULL);
	CHECK(ngot == 3, "worker 2 gets all three: %d", ngot);
	ngot = 0;
	wshm_poll(w, 1, &next1, collect, NULL);
	CHECK(ngot == 0, "nothing twice: %d", ngot);

	/* A line from another process (the workers are forked). */
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 10; i++) {
			char line[32];

			snprintf(line, sizeof(line), "peer attack smtp %d", i);
			wshm_post(w, 2, line);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ngot = 0;
	wshm_poll(w, 1, &next1, collect, NULL);
	CHECK(ngot == 10 && strcmp(got[9], "peer attack smtp 9") == 0,
	      "10 lines from a forked process: %d", ngot);

	/* A reader more than the ring behind loses the oldest, and says how many. */
	for (int i = 0; i < 200; i++)
		wshm_post(w, 0, "x");
	ngot = 0;
	lost = wshm_poll(w, 1, &next1, collect, NULL);
	CHECK(lost == 72 && ngot == 64, "lost %llu (want 72), got %d (the first 64 of 128)",
	      (unsigned long long)lost, ngot);
	CHECK(next1 == wshm_head(w), "caught up");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(wshm_post(w, 0, big) < 0, "a line too long is refused");
	wshm_free(&w);
	CHECK(w == NULL, "freed");
}

static void test_totals(void)
{
	char err[256], buf[WSHM_ENGINE_MAX];
	struct wshm *w = wshm_new(2, 2, err, sizeof(err));
	struct mxg a, b;
	struct listener la[2], lb[2];
	struct mxg_stats st;
	struct wshm_listener lst[2];
	uint32_t stages[WSHM_STAGES], da[2] = {30, 5}, db[2] = {12, 0};
	int nconns;

	CHECK(w != NULL, "wshm_new: %s", err);
	if (w == NULL)
		return;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(la, 0, sizeof(la));
	memset(lb, 0, sizeof(lb));
	hist_init(&a.stats.dns_latency, hist_bounds_latency, hist_nbounds_latency);
	hist_init(&b.stats.dns_latency, hist_bounds_latency, hist_nbounds_latency);
	a.listeners = la;
	b.listeners = lb;
	a.nlisteners = b.nlisteners = 2;
	a.stats.accepted = 10;
	a.stats.refusals[REFUSE_BLOCKED] = 3;
	a.nconns = 4;
	a.stage_open[6] = 4;
	la[1].stats.accepted = 10;
	la[1].open = 4;
	hist_observe(&a.stats.dns_latency, 0.002);
	b.stats.accepted = 7;
	b.stats.refusals[REFUSE_BLOCKED] = 1;
	b.nconns = 2;
	b.stage_open[1] = 2;
	lb[0].stats.accepted = 7;
	lb[0].open = 2;
	hist_observe(&b.stats.dns_latency, 0.002);
	hist_observe(&b.stats.dns_latency, 5.0);
	wshm_slot(w, 0)->pid = 100;
	wshm_slot(w, 1)->pid = 101;
	wshm_update(w, 0, &a, da, 2);
	wshm_update(w, 1, &b, db, 2);

	wshm_total(w, &a, &st, &nconns, stages, lst);
	CHECK(st.accepted == 17 && st.refusals[REFUSE_BLOCKED] == 4, "counters summed: %llu",
	      (unsigned long long)st.accepted);
	CHECK(nconns == 6 && stages[6] == 4 && stages[1] == 2, "open: %d", nconns);
	CHECK(lst[0].stats.accepted == 7 && lst[1].stats.accepted == 10 && lst[0].open == 2 &&
		  lst[1].open == 4,
	      "per listener");
	CHECK(st.dns_latency.count == 3 && st.dns_latency.bounds == hist_bounds_latency,
	      "histograms summed, bounds kept: %llu", (unsigned long long)st.dns_latency.count);
	CHECK(wshm_distinct_others(w, 0, 0) == 12 && wshm_distinct_others(w, 1, 0) == 30,
	      "the others' distinct sources");

	/* Worker 1 dies: its open connections and sources go, its counters stay. */
	wshm_slot(w, 1)->pid = 0;
	wshm_clear_open(w, 1);
	wshm_total(w, &a, &st, &nconns, stages, lst);
	CHECK(st.accepted == 17 && nconns == 4 && lst[0].open == 0 && stages[1] == 0,
	      "a dead worker: accepted %llu, open %d", (unsigned long long)st.accepted, nconns);
	CHECK(wshm_distinct_others(w, 0, 0) == 0, "a dead worker counts no source");

	/* Its successor carries the counters on, with its own bucket bounds. */
	memset(&b.stats, 0, sizeof(b.stats));
	hist_init(&b.stats.dns_latency, hist_bounds_latency, hist_nbounds_latency);
	wshm_restore(w, 1, &b);
	CHECK(b.stats.accepted == 7 && b.stats.dns_latency.count == 2 &&
		  b.stats.dns_latency.bounds == hist_bounds_latency && lb[0].stats.accepted == 7,
	      "restored");

	CHECK(wshm_engine(w, 0, buf, sizeof(buf)) < 0, "no engine text yet");
	wshm_set_engine(w, 0, "{\"held\":4}");
	CHECK(wshm_engine(w, 0, buf, sizeof(buf)) == 0 && strcmp(buf, "{\"held\":4}") == 0,
	      "engine text: %s", buf);
	wshm_free(&w);
}

static void test_hash(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in6 b = {.sin6_family = AF_INET6};
	int count[3] = {0};

	/* Every address of a /24 goes where the first one goes. */
	inet_pton(AF_INET, "203.0.113.0", &a.sin_addr);
	int w0 = listen_worker_of((struct sockaddr *)&a, 3, 24, 64);

	for (int i = 1; i < 256; i++) {
		a.sin_addr.s_addr = htonl(0xcb007100u | (uint32_t)i);
		CHECK(listen_worker_of((struct sockaddr *)&a, 3, 24, 64) == w0, "203.0.113.%d", i);
	}
	/* Networks spread over every worker. */
	for (uint32_t net = 0; net < 3000; net++) {
		a.sin_addr.s_addr = htonl(0x0a000000u | net << 8);
		count[listen_worker_of((struct sockaddr *)&a, 3, 24, 64)]++;
	}
	for (int i = 0; i < 3; i++)
		CHECK(count[i] > 800 && count[i] < 1200, "worker %d: %d of 3000 networks", i,
		      count[i]);
	/* IPv6: the /64 decides, the interface identifier does not. */
	inet_pton(AF_INET6, "2001:db8:1:2::1", &b.sin6_addr);
	w0 = listen_worker_of((struct sockaddr *)&b, 4, 24, 64);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff:1:2:3", &b.sin6_addr);
	CHECK(listen_worker_of((struct sockaddr *)&b, 4, 24, 64) == w0, "same /64");
	CHECK(listen_worker_of((struct sockaddr *)&b, 1, 24, 64) == 0, "one worker: 0");
}

int main(void)
{
	test_ring();
	test_totals();
	test_hash();
	return check_done("wshm");
}
