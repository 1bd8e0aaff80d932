/*
 * test_store.c - the LMDB store: lookups answered from the loop and never
 * synchronously, cancel, expiry (on lookup and in the background), listing
 * order, persistence across close/reopen and across kill -9, the value
 * layout on disk, bad keys and bad values.
 *
 * With STORE_BENCH=N in the environment it also times N puts and N gets.
 */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
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
	struct store *s = store_open(base, state, err, sizeof(err));

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
		s = store_open(base, state, err, sizeof(err));
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

	s = store_open(base, "/dev/null/state", err, sizeof(err));
	CHECK(s == NULL && strncmp(err, "store: cannot create /dev/null/state: ", 38) == 0, "%s",
	      err);
	snprintf(path, sizeof(path), "%s/bad", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bad/store.lmdb", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/bad", dir);
	s = store_open(base, path, err, sizeof(err));
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
	test_open_errors();
	test_basic();
	test_cancel();
	test_list();
	test_persist();
	test_crash();
	test_layout();
	test_expiry();
	if (nbench != NULL)
		bench(atol(nbench));
	cleanup();
	event_base_free(base);
	return check_done("store");
}
