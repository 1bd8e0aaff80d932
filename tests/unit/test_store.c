/*
 * test_store.c - the LMDB store: lookups answered from the loop and never
 * synchronously, cancel, expiry (on lookup and in the background), listing
 * order, persistence across close/reopen and across kill -9, the value
 * layout on disk, bad keys and bad values; then the Redis backend against a
 * real redis-server the test starts on a free loopback port (skipped, with
 * the reason, when redis-server is not installed): sharing between two
 * instances, expiry, listing, messages, a stopped and a killed Redis.
 *
 * With STORE_BENCH=N in the environment it also times N puts and N gets;
 * with STORE_BENCH_DECISIONS=N (and STORE_BENCH_REDIS=redis://...) it times
 * greylist decisions, a get and a put each, on each backend (bench/store).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <lmdb.h>

#include "check.h"
#include "store.h"

static struct event_base *base;
static char dir[64];	/* the temporary directory */
static char state[128]; /* the state directory in it, created by store_open */

struct got {
	int calls;
	int found;
	struct store_rec rec;
};

static void got_cb(int found, const struct store_rec *rec, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->found = found;
	if (found == 1)
		g->rec = *rec;
}

static struct store *open_store(void)
{
	char err[512];
	struct store *s = store_open(base, "lmdb", state, 50, 0, err, sizeof(err));

	CHECK(s != NULL, "store_open: %s", err);
	if (s == NULL)
		exit(check_done("store"));
	return s;
}

/* run_until - run the loop until *n reaches want, a few rounds at most. */
static void run_until(const int *n, int want)
{
	for (int i = 0; i < 20 && *n < want; i++)
		event_base_loop(base, EVLOOP_ONCE);
}

/* get - look up and wait for the answer; checks it does not come synchronously. */
static int get(struct store *s, enum store_kind kind, const char *key, struct store_rec *rec)
{
	struct got g = {0, -2, {0, 0, 0, 0}};
	struct store_req *req = store_get(s, kind, key, got_cb, &g);

	CHECK(req != NULL, "store_get %s", key);
	if (req == NULL)
		return -2;
	CHECK(g.calls == 0, "answered synchronously: %s", key);
	run_until(&g.calls, 1);
	CHECK(g.calls == 1, "answered %d times: %s", g.calls, key);
	if (rec != NULL)
		*rec = g.rec;
	return g.found;
}

static int same(const struct store_rec *a, const struct store_rec *b)
{
	return a->first == b->first && a->last == b->last && a->expires == b->expires &&
	       a->count == b->count;
}

static struct store_rec mkrec(int64_t first, int64_t expires, uint32_t count)
{
	struct store_rec r = {first, first + 1, expires, count};

	return r;
}

static void test_basic(void)
{
	struct store *s = open_store();
	int64_t now = time(NULL);
	struct store_rec r = mkrec(now - 100, now + 3600, 7), out;
	char key[STORE_KEY_MAX + 2];

	CHECK(store_put(s, STORE_GREY, "1.2.3.4/a@b/c@d", &r) == 0, "put");
	CHECK(get(s, STORE_GREY, "1.2.3.4/a@b/c@d", &out) == 1, "found");
	CHECK(same(&out, &r), "same record: %lld %lld %lld %u", (long long)out.first,
	      (long long)out.last, (long long)out.expires, out.count);
	CHECK(get(s, STORE_AWL, "1.2.3.4/a@b/c@d", NULL) == 0, "kinds are apart");
	CHECK(get(s, STORE_GREY, "nothing", NULL) == 0, "not found");

	r.count = 8;
	CHECK(store_put(s, STORE_GREY, "1.2.3.4/a@b/c@d", &r) == 0, "replace");
	CHECK(get(s, STORE_GREY, "1.2.3.4/a@b/c@d", &out) == 1 && out.count == 8, "replaced");

	/* Expired: never returned, though still counted until swept. */
	r = mkrec(now - 100, now - 1, 1);
	CHECK(store_put(s, STORE_TARPIT, "old", &r) == 0, "put expired");
	r.expires = now;
	CHECK(store_put(s, STORE_TARPIT, "now", &r) == 0, "put expiring now");
	CHECK(get(s, STORE_TARPIT, "old", NULL) == 0, "expired is not found");
	CHECK(get(s, STORE_TARPIT, "now", NULL) == 0, "expires == now is not found");
	CHECK(store_count(s, STORE_TARPIT) == 2, "expired still counted: %ld",
	      store_count(s, STORE_TARPIT));

	/* Negative and large times survive the encoding. */
	r = mkrec(-5, INT64_MAX, UINT32_MAX);
	CHECK(store_put(s, STORE_AWL, "extremes", &r) == 0, "put extremes");
	CHECK(get(s, STORE_AWL, "extremes", &out) == 1 && same(&out, &r), "extremes round-trip");

	/* store_del: 1 existed, 0 did not (or had expired), and then it is gone. */
	CHECK(store_del(s, STORE_AWL, "extremes") == 1, "del existing");
	CHECK(store_del(s, STORE_AWL, "extremes") == 0, "del again");
	CHECK(get(s, STORE_AWL, "extremes", NULL) == 0, "deleted");
	CHECK(store_del(s, STORE_TARPIT, "old") == 0, "del expired reports absent");
	CHECK(store_count(s, STORE_TARPIT) == 1, "but removes it");
	CHECK(store_del(s, STORE_TARPIT, "now") == 0, "del expiring now");

	/* Keys: 1 to STORE_KEY_MAX printable bytes. */
	r = mkrec(now, now + 60, 1);
	memset(key, 'k', sizeof(key));
	key[STORE_KEY_MAX] = '\0';
	CHECK(store_put(s, STORE_AWL, key, &r) == 0, "longest key");
	CHECK(get(s, STORE_AWL, key, NULL) == 1, "longest key found");
	CHECK(store_del(s, STORE_AWL, key) == 1, "longest key deleted");
	key[STORE_KEY_MAX] = 'k';
	key[STORE_KEY_MAX + 1] = '\0';
	CHECK(store_put(s, STORE_AWL, key, &r) == -1, "key too long");
	CHECK(store_get(s, STORE_AWL, key, got_cb, NULL) == NULL, "get: key too long");
	CHECK(store_del(s, STORE_AWL, key) == -1, "del: key too long");
	CHECK(store_put(s, STORE_AWL, "", &r) == -1, "empty key");
	CHECK(store_get(s, STORE_AWL, "", got_cb, NULL) == NULL, "get: empty key");
	CHECK(store_put(s, STORE_AWL, "a\nb", &r) == -1, "control character");
	CHECK(store_put(s, STORE_NKINDS, "a", &r) == -1, "no such kind");
	CHECK(store_count(s, STORE_NKINDS) == -1, "count: no such kind");
	CHECK(store_count(s, STORE_AWL) == 0, "nothing left in awl");
	store_close(&s);
	CHECK(s == NULL, "store_close clears the pointer");
	store_close(&s);
}

/* A callback that cancels another request, still pending. */
struct canceller {
	struct got g;
	struct store_req *victim;
};

static void cancel_cb(int found, const struct store_rec *rec, void *arg)
{
	struct canceller *c = arg;

	got_cb(found, rec, &c->g);
	store_cancel(c->victim);
}

/* A callback that asks again: answered in a later round, never inside its own store_get. */
struct chain {
	struct store *s;
	int calls, sync_violations;
};

static void chain_cb(int found, const struct store_rec *rec, void *arg)
{
	struct chain *c = arg;
	int before = ++c->calls;

	if (c->calls < 5) {
		store_get(c->s, STORE_GREY, "k", chain_cb, c);
		if (c->calls != before)
			c->sync_violations++;
	}
}

static void test_cancel(void)
{
	struct store *s = open_store();
	struct store_rec r = mkrec(time(NULL), time(NULL) + 60, 1);
	struct got a = {0, 0, {0, 0, 0, 0}}, b = a, c = a;
	struct canceller k = {{0, 0, {0, 0, 0, 0}}, NULL};
	struct chain ch = {s, 0, 0};
	struct store_req *ra;

	CHECK(store_put(s, STORE_GREY, "k", &r) == 0, "put");
	ra = store_get(s, STORE_GREY, "k", got_cb, &a);
	store_get(s, STORE_GREY, "k", got_cb, &b);
	store_cancel(ra);
	run_until(&b.calls, 1);
	CHECK(a.calls == 0, "cancelled callback ran");
	CHECK(b.calls == 1 && b.found == 1, "the other one ran: %d %d", b.calls, b.found);

	store_get(s, STORE_GREY, "k", cancel_cb, &k);
	k.victim = store_get(s, STORE_GREY, "k", got_cb, &c);
	run_until(&k.g.calls, 1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(k.g.calls == 1 && c.calls == 0, "cancelled from a callback: %d %d", k.g.calls,
	      c.calls);

	store_get(s, STORE_GREY, "k", chain_cb, &ch);
	run_until(&ch.calls, 5);
	CHECK(ch.calls == 5 && ch.sync_violations == 0, "chain: %d calls, %d synchronous", ch.calls,
	      ch.sync_violations);

	/* Pending at close: never called, freed (the sanitizer build checks). */
	a.calls = 0;
	store_get(s, STORE_GREY, "k", got_cb, &a);
	store_get(s, STORE_GREY, "nothing", got_cb, &a);
	store_close(&s);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(a.calls == 0, "callback ran after close");
}

struct listed {
	char keys[8][16];
	struct store_rec recs[8];
	int n, stop_at;
};

static int list_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct listed *l = arg;

	if (l->n < 8) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
		l->recs[l->n] = *rec;
	}
	l->n++;
	return l->n == l->stop_at;
}

/* nest_cb - a walk that looks up, writes and deletes as it goes. */
struct nest {
	struct store *s;
	struct got got;
	int errors;
};

static int nest_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct nest *n = arg;
	char copy[32];

	if (store_get(n->s, STORE_AWL, "c", got_cb, &n->got) == NULL)
		n->errors++;
	if (strcmp(key, "ab") == 0) {
		snprintf(copy, sizeof(copy), "%s-copy", key);
		if (store_put(n->s, STORE_AWL, copy, rec) != 0 ||
		    store_del(n->s, STORE_AWL, key) != 1)
			n->errors++;
	}
	return 0;
}

static void test_list(void)
{
	struct nest nest = {NULL, {0, 0, {0, 0, 0, 0}}, 0};
	struct store *s = open_store();
	int64_t now = time(NULL);
	struct store_rec r;
	struct listed l = {{{0}}, {{0, 0, 0, 0}}, 0, 0};
	static const char *const keys[] = {"c", "a", "bb", "b", "ab"};

	for (int i = 0; i < 5; i++) {
		r = mkrec(now, now + 60, (uint32_t)i);
		CHECK(store_put(s, STORE_AWL, keys[i], &r) == 0, "put %s", keys[i]);
	}
	r = mkrec(now, now - 60, 99);
	CHECK(store_put(s, STORE_AWL, "aa-expired", &r) == 0, "put expired");
	CHECK(store_put(s, STORE_GREY, "other-kind", &r) == 0, "put other kind");
	CHECK(store_count(s, STORE_AWL) == 6, "count: %ld", store_count(s, STORE_AWL));

	CHECK(store_list(s, STORE_AWL, list_cb, &l) == 5, "visited %d", l.n);
	CHECK(l.n == 5 && strcmp(l.keys[0], "a") == 0 && strcmp(l.keys[1], "ab") == 0 &&
		  strcmp(l.keys[2], "b") == 0 && strcmp(l.keys[3], "bb") == 0 &&
		  strcmp(l.keys[4], "c") == 0,
	      "order: %s %s %s %s %s", l.keys[0], l.keys[1], l.keys[2], l.keys[3], l.keys[4]);
	CHECK(l.recs[0].count == 1 && l.recs[4].count == 0 && l.recs[3].count == 2, "records");

	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	CHECK(store_list(s, STORE_AWL, list_cb, &l) == 2 && l.n == 2, "stops: %d", l.n);
	memset(&l, 0, sizeof(l));
	CHECK(store_list(s, STORE_TARPIT, list_cb, &l) == 0 && l.n == 0, "empty kind");
	CHECK(store_list(s, STORE_NKINDS, list_cb, &l) == -1, "no such kind");

	/* The store may be used from inside the walk. */
	nest.s = s;
	CHECK(store_list(s, STORE_AWL, nest_cb, &nest) == 5, "nested walk");
	CHECK(nest.errors == 0, "%d errors inside the walk", nest.errors);
	run_until(&nest.got.calls, 5);
	CHECK(nest.got.calls == 5 && nest.got.found == 1, "nested lookups: %d", nest.got.calls);
	CHECK(store_count(s, STORE_AWL) == 6 && get(s, STORE_AWL, "ab", NULL) == 0 &&
		  get(s, STORE_AWL, "ab-copy", NULL) == 1,
	      "nested writes");
	store_close(&s);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(base, NULL);
}

/* watch - note each count the sweep leaves behind; stop once it is down to want. */
struct watch {
	struct store *s;
	long want;
	long seen[8];
	int nseen;
};

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	long n = store_count(w->s, STORE_TARPIT);

	if (w->nseen < 8 && (w->nseen == 0 || w->seen[w->nseen - 1] != n))
		w->seen[w->nseen++] = n;
	if (n <= w->want)
		event_base_loopexit(base, NULL);
}

/*
 * Background expiry. 2050 live records come first in key order, then 250
 * expired ones among 50 live. The first tick only looks at 2000 live
 * records; the second must resume there (starting from the top again it
 * would never get further) and delete no more than 200; the third
 * deletes the last 50. About three seconds.
 */
static void test_expiry(void)
{
	struct store *s = open_store();
	int64_t now = time(NULL);
	struct timeval poll = {0, 50000}, limit = {5, 0};
	struct watch w = {s, 2100, {0}, 0};
	struct event *ev, *dl;
	struct store_rec r;
	char key[32];

	for (int i = 0; i < 2050; i++) {
		snprintf(key, sizeof(key), "a%05d", i);
		r = mkrec(now, now + 3600, (uint32_t)i);
		CHECK(store_put(s, STORE_TARPIT, key, &r) == 0, "put %s", key);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		r = mkrec(now, i % 6 == 0 ? now + 3600 : now - 1, (uint32_t)i);
		CHECK(store_put(s, STORE_TARPIT, key, &r) == 0, "put %s", key);
	}
	ev = event_new(base, -1, EV_PERSIST, watch_cb, &w);
	dl = event_new(base, -1, 0, deadline_cb, NULL);
	watch_cb(-1, 0, &w);
	event_add(ev, &poll);
	event_add(dl, &limit);
	event_base_dispatch(base);
	event_free(ev);
	event_free(dl);
	CHECK(w.nseen == 3 && w.seen[0] == 2350 && w.seen[1] == 2150 && w.seen[2] == 2100,
	      "counts seen: %d: %ld %ld %ld", w.nseen, w.seen[0], w.seen[1], w.seen[2]);
	CHECK(get(s, STORE_TARPIT, "a00000", NULL) == 1 &&
		  get(s, STORE_TARPIT, "k00000", NULL) == 1 &&
		  get(s, STORE_TARPIT, "k00294", NULL) == 1,
	      "live records kept");
	store_close(&s);
}

static void test_persist(void)
{
	struct store *s = open_store();
	int64_t now = time(NULL);
	struct store_rec r = mkrec(now, now + 60, 42), out;

	CHECK(store_put(s, STORE_GREY, "kept", &r) == 0, "put");
	store_close(&s);
	s = open_store();
	CHECK(get(s, STORE_GREY, "kept", &out) == 1 && out.count == 42, "kept across reopen");
	CHECK(store_del(s, STORE_GREY, "kept") == 1, "del");
	store_close(&s);
}

/* The child writes and is killed without closing: everything committed is there. */
static void test_crash(void)
{
	struct store *s;
	int64_t now = time(NULL);
	struct store_rec out;
	int status;
	long n0;
	pid_t pid;

	s = open_store();
	n0 = store_count(s, STORE_AWL);
	/* An LMDB environment must not cross a fork: the child opens its own. */
	store_close(&s);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char err[512];

		/* Its own loop: the parent's must not be touched from here. */
		base = event_base_new();
		s = store_open(base, "lmdb", state, 50, 0, err, sizeof(err));
		for (int i = 0; s != NULL && i < 1000; i++) {
			char key[32];
			struct store_rec r = mkrec(now, now + 3600, (uint32_t)i);

			snprintf(key, sizeof(key), "crash-%04d", i);
			if (store_put(s, STORE_AWL, key, &r) < 0)
				_exit(1);
		}
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	CHECK(pid > 0, "fork");
	if (pid < 0)
		return;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
	s = open_store();
	CHECK(store_count(s, STORE_AWL) == n0 + 1000, "after kill -9: %ld, %ld before",
	      store_count(s, STORE_AWL), n0);
	CHECK(get(s, STORE_AWL, "crash-0999", &out) == 1 && out.count == 999, "last record");
	CHECK(get(s, STORE_AWL, "crash-0000", &out) == 1 && out.count == 0, "first record");
	store_close(&s);
}

/* raw_env - the store file opened directly, to look at and plant values. */
static MDB_env *raw_env(void)
{
	char path[256];
	MDB_env *env;

	snprintf(path, sizeof(path), "%s/store.lmdb", state);
	mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 4);
	if (mdb_env_open(env, path, MDB_NOSUBDIR, 0600) != 0) {
		CHECK(0, "cannot open %s directly", path);
		mdb_env_close(env);
		return NULL;
	}
	return env;
}

static void test_layout(void)
{
	/* clang-format off */
	static const unsigned char want[29] = {
		1,						/* version */
		0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0,		/* first */
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* last = -2 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, /* expires = INT64_MAX */
		0x05, 0x06, 0x07, 0x08,				/* count */
	};
	/* clang-format on */
	struct store_rec r = {0x04030201, -2, INT64_MAX, 0x08070605};
	unsigned char bad[29];
	struct store *s = open_store();
	MDB_val k = {6, (char[]){"layout"}}, v;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	long n0;

	CHECK(store_put(s, STORE_GREY, "layout", &r) == 0, "put");
	n0 = store_count(s, STORE_GREY);
	store_close(&s);
	if ((env = raw_env()) == NULL)
		return;
	mdb_txn_begin(env, NULL, 0, &txn);
	CHECK(mdb_dbi_open(txn, "grey", 0, &dbi) == 0, "database named grey");
	CHECK(mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof(want) &&
		  memcmp(v.mv_data, want, sizeof(want)) == 0,
	      "layout on disk (%zu bytes)", v.mv_size);
	/* Plant values a store must not believe: wrong version, wrong size. */
	memcpy(bad, want, sizeof(bad));
	bad[0] = 2;
	v.mv_size = sizeof(bad);
	v.mv_data = bad;
	k.mv_data = (char[]){"badver"};
	mdb_put(txn, dbi, &k, &v, 0);
	v.mv_size = 28;
	k.mv_data = (char[]){"badsiz"};
	mdb_put(txn, dbi, &k, &v, 0);
	CHECK(mdb_txn_commit(txn) == 0, "planted");
	mdb_env_close(env);

	s = open_store();
	CHECK(get(s, STORE_GREY, "badver", NULL) == 0, "wrong version is absent");
	CHECK(get(s, STORE_GREY, "badsiz", NULL) == 0, "wrong size is absent");
	CHECK(get(s, STORE_GREY, "layout", NULL) == 1, "the good one is there");
	CHECK(store_del(s, STORE_GREY, "badsiz") == 0, "del of a bad value: absent");
	CHECK(store_count(s, STORE_GREY) == n0 + 1, "bad values counted: %ld, %ld before",
	      store_count(s, STORE_GREY), n0);
	store_close(&s);
}

static void test_open_errors(void)
{
	char err[512], path[256];
	struct store *s;

	s = store_open(base, "lmdb", "/dev/null/state", 50, 0, err, sizeof(err));
	CHECK(s == NULL && strncmp(err, "store: cannot create /dev/null/state: ", 38) == 0, "%s",
	      err);
	snprintf(path, sizeof(path), "%s/bad", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bad/store.lmdb", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bad", dir);
	s = store_open(base, "lmdb", path, 50, 0, err, sizeof(err));
	CHECK(s == NULL && strstr(err, "store: cannot open ") == err &&
		  strstr(err, "/bad/store.lmdb: ") != NULL,
	      "%s", err);
	snprintf(path, sizeof(path), "%s/bad/store.lmdb", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/bad/store.lmdb-lock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bad", dir);
	rmdir(path);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* bench - n puts, n gets (answered in batches of 1000), then the cost of sweep ticks. */
static void bench(long n)
{
	struct store *s = open_store();
	int64_t now = time(NULL);
	struct got g = {0, 0, {0, 0, 0, 0}};
	char key[96], path[256];
	double t, c;
	struct stat st;

	t = now_us();
	for (long i = 0; i < n; i++) {
		struct store_rec r = mkrec(now, now + (i % 2 ? 3600 : -1), (uint32_t)i);

		snprintf(key, sizeof(key), "192.0.2.%ld/sender%ld@example.org/rcpt@example.net",
			 i % 256, i);
		store_put(s, STORE_GREY, key, &r);
	}
	printf("bench: %ld puts: %.2f us each\n", n, (now_us() - t) / (double)n);
	t = now_us();
	for (long i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "192.0.2.%ld/sender%ld@example.org/rcpt@example.net",
			 i % 256, i);
		store_get(s, STORE_GREY, key, got_cb, &g);
		if (i % 1000 == 999 || i == n - 1)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	printf("bench: %ld gets: %.2f us each (%d answered)\n", n, (now_us() - t) / (double)n,
	       g.calls);
	snprintf(path, sizeof(path), "%s/store.lmdb", state);
	stat(path, &st);
	printf("bench: file %lld bytes, %.0f bytes per record\n", (long long)st.st_size,
	       (double)st.st_size / (double)n);
	/* Nothing synced yet: this is the worst flush the tick can meet. */
	t = now_us();
	store_close(&s);
	printf("bench: close, flushing everything: %.0f us\n", now_us() - t);
	/* Half of them have expired: time the CPU the next ticks take (waiting excluded). */
	s = open_store();
	for (int i = 0; i < 3; i++) {
		c = cpu_us();
		event_base_loop(base, EVLOOP_ONCE);
		printf("bench: tick %d: %.0f us CPU, %ld left\n", i, cpu_us() - c,
		       store_count(s, STORE_GREY));
	}
	store_close(&s);
}

/* ---- Redis: the shared backend, against a real redis-server the test starts. ---- */

static pid_t redis_pid = -1;
static int redis_port;

/* free_port - a loopback port nobody listens on right now. */
static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* redis_cmd - a blocking command to the test's redis-server; NULL if it is not there. */
static redisReply *redis_cmd(const char *fmt, ...)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
	redisReply *rep = NULL;
	va_list ap;

	if (c != NULL && c->err == 0) {
		redisSetTimeout(c, tv);
		va_start(ap, fmt);
		rep = redisvCommand(c, fmt, ap);
		va_end(ap);
	}
	if (c != NULL)
		redisFree(c);
	return rep;
}

/* redis_start - redis-server on redis_port, no persistence; 0 once it answers. */
static int redis_start(void)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", redis_port);
	fflush(NULL);
	if ((redis_pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind",
		      "127.0.0.1", "--save", "", "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && redis_pid > 0; i++) {
		redisReply *rep = redis_cmd("PING");

		if (rep != NULL) {
			freeReplyObject(rep);
			return 0;
		}
		usleep(20000);
	}
	return -1;
}

static void redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	redis_pid = -1;
}

/* remove_state - the state directory dir/name and its store file. */
static void remove_state(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/store.lmdb", dir, name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s/store.lmdb-lock", dir, name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rmdir(path);
}

static struct store *open_redis(const char *name)
{
	char spec[64], sdir[192], err[512];
	struct store *s;

	snprintf(spec, sizeof(spec), "redis://127.0.0.1:%d", redis_port);
	snprintf(sdir, sizeof(sdir), "%s/%s", dir, name);
	s = store_open(base, spec, sdir, 50, 100, err, sizeof(err));
	CHECK(s != NULL, "store_open %s: %s", spec, err);
	return s;
}

/* loop_until - run the loop until cond(s) holds, for at most ms milliseconds. */
static int loop_until(struct store *s, int (*cond)(struct store *), int ms)
{
	double end = now_us() + ms * 1e3;
	struct timeval slice = {0, 20000};

	while (!cond(s) && now_us() < end) {
		event_base_loopexit(base, &slice);
		event_base_dispatch(base);
	}
	return cond(s);
}

static int never(struct store *s)
{
	return 0;
}

/* spin - run the loop for ms milliseconds (writes reach Redis, messages arrive). */
static void spin(int ms)
{
	loop_until(NULL, never, ms);
}

/*
 * redis_get_replayed - cmd (a GET) on our own connection to Redis, asked
 * again (2 s at most) until it finds a string: the store's queue is empty
 * once its writes are sent, Redis has them once it has answered them, and
 * our GET on another connection may come first.
 */
static redisReply *redis_get_replayed(const char *cmd)
{
	redisReply *rep = NULL;

	for (int i = 0; i < 100; i++) {
		rep = redis_cmd(cmd);
		if (rep != NULL && rep->type == REDIS_REPLY_STRING)
			break;
		freeReplyObject(rep);
		rep = NULL;
		spin(20);
	}
	return rep;
}

static int is_up(struct store *s)
{
	struct store_status st;

	store_status(s, &st);
	return st.connected && !st.fallback;
}

static int is_down(struct store *s)
{
	return !is_up(s);
}

static int replayed(struct store *s)
{
	struct store_status st;

	store_status(s, &st);
	return st.connected && !st.fallback && st.replay_pending == 0;
}

struct msgs {
	int n;
	char last[600];
};

static void msg_cb(const char *msg, void *arg)
{
	struct msgs *m = arg;

	m->n++;
	snprintf(m->last, sizeof(m->last), "%s", msg);
}

static int list_keys(const char *key, const struct store_rec *rec, void *arg)
{
	char *out = arg;

	if (strlen(out) + strlen(key) + 2 < 256) {
		strcat(out, key);
		strcat(out, ",");
	}
	return 0;
}

/* timed_get - a lookup and the time until its answer, in ms. */
static int timed_get(struct store *s, enum store_kind kind, const char *key, double *ms)
{
	struct got g = {0, -2, {0, 0, 0, 0}};
	double t = now_us();

	if (store_get(s, kind, key, got_cb, &g) == NULL)
		return -2;
	for (int i = 0; i < 200 && g.calls == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	*ms = (now_us() - t) / 1e3;
	return g.calls == 1 ? g.found : -2;
}

static void close_cb(int found, const struct store_rec *rec, void *arg)
{
	struct store **sp = arg;

	store_close(sp);
}

static void test_redis_specs(void)
{
	static const char *bad[] = {"redis://",	    "redis://host:0", "redis://host:x",
				    "redis://h/x",  "unix:relative",  "redis:///s?x=1",
				    "memcache://h", "redis://[::1",   "redis://pw@host"};
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct store *s = store_open(base, bad[i], state, 50, 10, err, sizeof(err));

		CHECK(s == NULL && strncmp(err, "store: ", 7) == 0, "%s accepted (%s)", bad[i],
		      err);
		store_close(&s);
	}
}

static void test_redis(void)
{
	struct store *a, *b;
	struct store_status st;
	struct store_rec r, out;
	struct msgs ma = {0, ""}, mb = {0, ""};
	int64_t now = time(NULL);
	redisReply *rep;
	char keys[256] = "";
	double ms;

	if (access("/usr/bin/redis-server", X_OK) != 0) {
		printf("store: redis tests skipped: /usr/bin/redis-server not installed\n");
		return;
	}
	if ((redis_port = free_port()) < 0 || redis_start() < 0) {
		CHECK(0, "cannot start redis-server on port %d", redis_port);
		redis_stop();
		return;
	}
	a = open_redis("ra");
	b = open_redis("rb");
	if (a == NULL || b == NULL)
		goto out;
	CHECK(loop_until(a, is_up, 3000) && loop_until(b, is_up, 3000), "both connect");
	store_subscribe(a, msg_cb, &ma);
	store_subscribe(b, msg_cb, &mb);

	/* A record written by one instance is read by the other, with a Redis expiry. */
	r = mkrec(now, now + 60, 3);
	CHECK(store_put(a, STORE_GREY, "10.0.0.0/24/s@x.org/r y@z.net", &r) == 0, "put on a");
	CHECK(get(b, STORE_GREY, "10.0.0.0/24/s@x.org/r y@z.net", &out) == 1 && same(&r, &out),
	      "b reads a's record");
	rep = redis_cmd("PTTL %s", "mxg:grey:10.0.0.0/24/s@x.org/r y@z.net");
	CHECK(rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer > 55000 &&
		  rep->integer <= 60000,
	      "redis expiry %lld", rep ? rep->integer : -9);
	freeReplyObject(rep);
	CHECK(get(b, STORE_GREY, "absent", NULL) == 0, "absent key");
	/* An expired record is not written (deleted), and a planted bad value is absent. */
	r = mkrec(now - 10, now - 1, 1);
	store_put(a, STORE_TARPIT, "gone", &r);
	CHECK(get(b, STORE_TARPIT, "gone", NULL) == 0, "expired record absent");
	freeReplyObject(redis_cmd("SET mxg:awl:bad %s", "2 1 2 3 4"));
	CHECK(get(b, STORE_AWL, "bad", NULL) == 0, "bad value absent");
	/* Listing: Redis' records, sorted. */
	r = mkrec(now, now + 60, 1);
	store_put(b, STORE_TARPIT, "k2", &r);
	store_put(a, STORE_TARPIT, "k1", &r);
	spin(50);
	CHECK(store_list(a, STORE_TARPIT, list_keys, keys) == 2 && strcmp(keys, "k1,k2,") == 0,
	      "list: %s", keys);
	CHECK(store_del(a, STORE_TARPIT, "k2") == 1, "del of b's record from a");
	/* A store just opened lists Redis' records before its first answer arrives. */
	{
		struct store *c = open_redis("rc");

		keys[0] = '\0';
		CHECK(c != NULL && store_list(c, STORE_TARPIT, list_keys, keys) == 1 &&
			  strcmp(keys, "k1,") == 0,
		      "list at open: %s", keys);
		store_close(&c);
		remove_state("rc");
	}
	CHECK(get(b, STORE_TARPIT, "k2", NULL) == 0, "deleted everywhere");

	/* Messages: the other instance gets it, the sender does not. */
	CHECK(store_publish(a, "block 192.0.2.1 600") == 0, "publish");
	CHECK(store_publish(a, "bad\r\nline") < 0, "CR LF refused");
	spin(200);
	CHECK(mb.n == 1 && strcmp(mb.last, "block 192.0.2.1 600") == 0, "b got %d: %s", mb.n,
	      mb.last);
	CHECK(ma.n == 0, "a heard itself");

	/* Slow Redis (stopped): lookups answered locally within the timeout, then a fallback. */
	kill(redis_pid, SIGSTOP);
	r = mkrec(now, now + 60, 7);
	for (int i = 0; i < 3; i++) {
		int found = timed_get(a, STORE_GREY, "10.0.0.0/24/s@x.org/r y@z.net", &ms);

		CHECK(found == 1 && ms < 200, "lookup %d while stopped: found %d in %.0fms", i,
		      found, ms);
	}
	store_status(a, &st);
	CHECK(st.timeouts >= 3 && st.fallback && st.fallbacks == 1,
	      "slow: %llu timeouts, fallback %d", (unsigned long long)st.timeouts, st.fallback);
	/* b never wrote it but read it from Redis: it answers from its cache. */
	CHECK(timed_get(b, STORE_GREY, "10.0.0.0/24/s@x.org/r y@z.net", &ms) == 1, "b from cache");
	CHECK(store_put(a, STORE_AWL, "during-stop", &r) == 0, "put while stopped");
	store_status(a, &st);
	CHECK(st.replay_pending >= 1, "queued: %llu", (unsigned long long)st.replay_pending);
	CHECK(timed_get(a, STORE_AWL, "during-stop", &ms) == 1 && ms < 20, "local answer");
	kill(redis_pid, SIGCONT);
	CHECK(loop_until(a, replayed, 4000), "back and replayed after SIGCONT");
	rep = redis_get_replayed("GET mxg:awl:during-stop");
	CHECK(rep != NULL && rep->type == REDIS_REPLY_STRING, "replayed record in redis");
	freeReplyObject(rep);

	/* Redis killed: fallback at once, writes queued, replayed on restart. */
	redis_stop();
	CHECK(loop_until(a, is_down, 2000), "a notices the loss");
	CHECK(store_put(a, STORE_GREY, "while-dead", &r) == 0, "put while dead");
	CHECK(store_publish(a, "attack on") < 0, "publish while dead fails");
	CHECK(timed_get(a, STORE_GREY, "while-dead", &ms) == 1 && ms < 20, "local while dead");
	if (redis_start() < 0) {
		CHECK(0, "redis-server restart");
		goto out;
	}
	CHECK(loop_until(a, replayed, 8000), "a reconnects and replays");
	rep = redis_get_replayed("GET mxg:grey:while-dead");
	CHECK(rep != NULL && rep->type == REDIS_REPLY_STRING && strncmp(rep->str, "1 ", 2) == 0,
	      "write made while dead reached redis: %s", rep && rep->str ? rep->str : "-");
	freeReplyObject(rep);
	store_status(a, &st);
	CHECK(st.fallbacks == 2 && st.fallback_since == 0, "fallbacks %llu",
	      (unsigned long long)st.fallbacks);
	CHECK(loop_until(b, is_up, 8000), "b reconnects");
	/* The subscriber reconnects too. */
	mb.n = 0;
	for (int i = 0; i < 100 && mb.n == 0; i++) {
		store_publish(a, "attack on");
		spin(50);
	}
	CHECK(mb.n > 0 && strcmp(mb.last, "attack on") == 0, "messages after restart: %d", mb.n);

	/* Closing the store from a lookup's callback, with a reply still on its way. */
	kill(redis_pid, SIGSTOP);
	CHECK(store_get(b, STORE_GREY, "x", close_cb, &b) != NULL, "get");
	for (int i = 0; i < 20 && b != NULL; i++)
		spin(10);
	CHECK(b == NULL, "closed from the callback");
	/* And a cancelled lookup whose reply never comes. */
	store_cancel(store_get(a, STORE_GREY, "y", got_cb, NULL));
	kill(redis_pid, SIGCONT);
out:
	store_close(&a);
	store_close(&b);
	redis_stop();
	remove_state("ra");
	remove_state("rb");
}

/* ---- Decisions benchmark (bench/store): get + put of a greylist triplet. ---- */

struct dbench {
	struct store *s;
	long next, n, done;
	int64_t now;
	double *lat; /* per decision, us (sequential run only) */
	double t0;
};

static void dbench_key(char *key, size_t keysz, long i)
{
	snprintf(key, keysz, "192.0.%ld.0/24/sender#@example%ld.org/rcpt%ld@example.net",
		 (i / 256) % 256, i % 997, i);
}

static void dbench_issue(struct dbench *d);

static void dbench_cb(int found, const struct store_rec *rec, void *arg)
{
	struct dbench *d = arg;
	struct store_rec r = found == 1 ? *rec : mkrec(d->now, d->now + 3600, 0);
	char key[128];

	/* The engine's write after a lookup: count the comeback, or create. */
	r.count++;
	r.last = d->now;
	dbench_key(key, sizeof(key), d->done);
	store_put(d->s, STORE_GREY, key, &r);
	d->done++;
	if (d->lat != NULL) {
		d->lat[d->done - 1] = now_us() - d->t0;
		d->t0 = now_us();
	}
	dbench_issue(d);
}

static void dbench_issue(struct dbench *d)
{
	char key[128];

	if (d->next >= d->n)
		return;
	dbench_key(key, sizeof(key), d->next++);
	if (store_get(d->s, STORE_GREY, key, dbench_cb, d) == NULL)
		d->done++, d->next = d->n; /* cannot happen with valid keys: stop */
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* bench_decisions - n decisions one at a time, then n with conc in flight. */
static void bench_decisions(const char *spec, const char *label, long n, int conc)
{
	char err[512], sdir[192];
	struct store_status st;
	struct dbench d;
	double t, cpu;
	int64_t deadline;

	snprintf(sdir, sizeof(sdir), "%s/bench-%s", dir, label);
	memset(&d, 0, sizeof(d));
	if ((d.s = store_open(base, spec, sdir, 50, 100000, err, sizeof(err))) == NULL) {
		printf("decisions: %s: %s\n", label, err);
		return;
	}
	if (strcmp(label, "redis") == 0 && !loop_until(d.s, is_up, 3000)) {
		printf("decisions: %s: not connected\n", label);
		store_close(&d.s);
		snprintf(sdir, sizeof(sdir), "bench-%s", label);
		remove_state(sdir);
		return;
	}
	d.now = time(NULL);
	d.lat = calloc((size_t)n, sizeof(*d.lat));
	/* One at a time: the latency a dialogue sees. */
	d.n = n;
	d.t0 = t = now_us();
	dbench_issue(&d);
	deadline = (int64_t)(now_us() + 60e6);
	while (d.done < n && now_us() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	t = now_us() - t;
	qsort(d.lat, (size_t)d.done, sizeof(*d.lat), dcmp);
	printf("decisions: %s sequential: %ld in %.3f s, %.1f us each (p50 %.1f, p99 %.1f)\n",
	       label, d.done, t / 1e6, t / (double)(d.done ? d.done : 1),
	       d.done ? d.lat[d.done / 2] : 0.0, d.done ? d.lat[d.done * 99 / 100] : 0.0);
	free(d.lat);
	d.lat = NULL;
	/* conc in flight: how many decisions per second the process can make. */
	d.next = d.done = 0;
	t = now_us();
	cpu = cpu_us();
	for (int i = 0; i < conc; i++)
		dbench_issue(&d);
	deadline = (int64_t)(now_us() + 60e6);
	while (d.done < n && now_us() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	t = now_us() - t;
	cpu = cpu_us() - cpu;
	store_status(d.s, &st);
	printf("decisions: %s concurrent %d: %ld in %.3f s, %.0f per second, %.1f us CPU each, "
	       "%llu timeouts\n",
	       label, conc, d.done, t / 1e6, (double)d.done / (t / 1e6), cpu / (double)n,
	       (unsigned long long)st.timeouts);
	store_close(&d.s);
	snprintf(sdir, sizeof(sdir), "bench-%s", label);
	remove_state(sdir);
}

/* cleanup - remove the temporary directory and what the tests left in it. */
static void cleanup(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/store.lmdb", state);
	unlink(path);
	snprintf(path, sizeof(path), "%s/store.lmdb-lock", state);
	unlink(path);
	rmdir(state);
	CHECK(rmdir(dir) == 0, "temporary directory %s left behind", dir);
}

int main(void)
{
	const char *nbench = getenv("STORE_BENCH");

	snprintf(dir, sizeof(dir), "/tmp/mxg-store-XXXXXX");
	if (mkdtemp(dir) == NULL || (base = event_base_new()) == NULL) {
		perror("setup");
		return 1;
	}
	/* Not there yet: store_open creates it. */
	snprintf(state, sizeof(state), "%s/state", dir);
	/* STORE_BENCH_DECISIONS=N [STORE_BENCH_REDIS=spec]: only that (bench/store). */
	if (getenv("STORE_BENCH_DECISIONS") != NULL) {
		long n = atol(getenv("STORE_BENCH_DECISIONS"));

		bench_decisions("lmdb", "lmdb", n, 100);
		if (getenv("STORE_BENCH_REDIS") != NULL)
			bench_decisions(getenv("STORE_BENCH_REDIS"), "redis", n, 100);
		cleanup();
		event_base_free(base);
		return check_done("store");
	}
	test_open_errors();
	test_basic();
	test_cancel();
	test_list();
	test_persist();
	test_crash();
	test_layout();
	test_expiry();
	test_redis_specs();
	test_redis();
	if (nbench != NULL)
		bench(atol(nbench));
	cleanup();
	event_base_free(base);
	return check_done("store");
}
