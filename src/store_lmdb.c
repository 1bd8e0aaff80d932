/*
 * store_lmdb.c - the embedded store on LMDB (a backend behind store.c; also
 * the local fallback of the Redis backend).
 *
 * One environment, STATE_DIR/store.lmdb (a single file plus its -lock
 * file), with one named database per record kind. A value is a fixed
 * little-endian layout behind a format version byte; a value of another
 * size or version is treated as absent, and swept away like an expired one.
 *
 * Durability. Every store_put/store_del is its own committed transaction,
 * but the environment runs with MDB_NOSYNC: a commit writes its pages into
 * the file (write(2), not a writable map) and does not wait for the disk.
 * Once the commit returns, the data is in the kernel's page cache, so it
 * survives the death of the process, kill -9 included. What a commit does
 * not survive is a crash of the system before the kernel writes the pages
 * out; the tick below calls mdb_env_sync() every second when something was
 * written, which bounds that loss to about a second of updates. On a file
 * system that does not keep write order, such a crash may also leave the
 * file unusable; it holds soft state (greylist and tarpit memory) that
 * clients rebuild by retrying, which is why an fdatasync() per update
 * (milliseconds on an ordinary disk, every one of them spent inside the
 * event loop) is not worth paying here.
 *
 * Lookups are answered from the file at once (LMDB reads are memory
 * reads) but delivered through a zero-delay event, as the interface
 * promises: a caller is never called back from inside its own store_get().
 * Answering at once keeps the order of a pipelined network backend: a get
 * sees the writes issued before it and none issued after it.
 *
 * Expiry. The same one-second tick walks each kind from where it stopped
 * last time, looking at no more than SWEEP_SCAN records and deleting no
 * more than SWEEP_DEL, so a store of millions of records never holds the
 * loop for long.
 *
 * The environment is opened with MDB_NOTLS although mxguard has one
 * thread: without it LMDB allows one transaction per thread, and a
 * store_list() callback that looks something up or writes (while the
 * list's read transaction is open) would fail.
 *
 * This module never logs and never exits.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>
#include <lmdb.h>

#include "store.h"
#include "store_ops.h"

#define STORE_FILE "store.lmdb"
#define STORE_MAPSIZE ((size_t)1 << 30) /* a limit, not an allocation */
#define STORE_VERSION 1
#define STORE_VALSZ STORE_LMDB_VALSZ
#define SWEEP_SCAN 2000 /* records looked at per kind per tick */
#define SWEEP_DEL 200	/* records deleted per kind per tick */

struct lmdb_req {
	struct store_req head; /* first: store_cancel() finds lmdb_cancel */
	TAILQ_ENTRY(lmdb_req) link;
	struct lmdb *s;
	store_get_cb cb;
	void *arg;
	int found;
	int delivering; /* its callback is running: cancel is too late */
	struct store_rec rec;
};

/* Where the background sweep of one kind goes on: the first key not yet looked at. */
struct store_sweep {
	size_t len; /* 0: from the first key */
	char key[STORE_KEY_MAX];
	unsigned long removed; /* records the sweep deleted since store_open */
};

struct lmdb {
	MDB_env *env;
	MDB_dbi dbi[STORE_NKINDS];
	int opened;	       /* env open: flush on close */
	int dirty;	       /* written since the last sync */
	struct event *deliver; /* zero-delay: answers queued lookups */
	struct event *tick;    /* every second: sweep, sync */
	TAILQ_HEAD(lmdb_reqs, lmdb_req) reqs;
	size_t nreqs;
	int *alive; /* while delivering: cleared by store_close */
	struct store_sweep sweep[STORE_NKINDS];
};

static void lmdb_close(void *b);
static void lmdb_cancel(struct store_req *r);

/* The value layout: version byte, then little-endian fields. */
void store_lmdb_rec_encode(const struct store_rec *rec, unsigned char *p)
{
	uint64_t f[3] = {(uint64_t)rec->first, (uint64_t)rec->last, (uint64_t)rec->expires};

	*p++ = STORE_VERSION;
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			*p++ = (unsigned char)(f[i] >> (8 * b));
	for (int b = 0; b < 4; b++)
		*p++ = (unsigned char)(rec->count >> (8 * b));
}

int store_lmdb_rec_decode(const void *data, size_t len, struct store_rec *rec)
{
	const unsigned char *p = data;
	uint64_t f[3] = {0, 0, 0};
	uint32_t count = 0;

	if (len != STORE_VALSZ || *p++ != STORE_VERSION)
		return -1;
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			f[i] |= (uint64_t)*p++ << (8 * b);
	for (int b = 0; b < 4; b++)
		count |= (uint32_t)*p++ << (8 * b);
	rec->first = (int64_t)f[0];
	rec->last = (int64_t)f[1];
	rec->expires = (int64_t)f[2];
	rec->count = count;
	return 0;
}

/* rec_live - the value is readable and not expired at now (rec filled in). */
static int rec_live(const MDB_val *v, struct store_rec *rec, int64_t now)
{
	return store_lmdb_rec_decode(v->mv_data, v->mv_size, rec) == 0 && rec->expires > now;
}

/*
 * key_check - point k at key if it is a valid key: 1 to STORE_KEY_MAX
 * bytes, no control characters (keys end up in control socket lines).
 * Returns 0, or -1.
 */
static int key_check(const char *key, MDB_val *k)
{
	size_t len = strnlen(key, STORE_KEY_MAX + 1);

	if (len == 0 || len > STORE_KEY_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return -1;
	k->mv_size = len;
	/* LMDB takes keys through a non-const pointer but never writes them. */
	k->mv_data = (void *)(uintptr_t)key;
	return 0;
}

/* store_lookup - 1 and rec for a live record, 0 for none, -1 on error. */
static int store_lookup(struct lmdb *s, enum store_kind kind, MDB_val *k, struct store_rec *rec)
{
	MDB_txn *txn;
	MDB_val v;
	int rc, found;

	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	rc = mdb_get(txn, s->dbi[kind], k, &v);
	if (rc == 0)
		found = rec_live(&v, rec, time(NULL));
	else
		found = rc == MDB_NOTFOUND ? 0 : -1;
	mdb_txn_abort(txn);
	return found;
}

/*
 * store_deliver - answer the lookups queued before this round. A callback
 * that asks again is answered in the next round, so a chain of lookups
 * lets the rest of the loop run in between.
 */
static void store_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct lmdb *s = arg;
	struct lmdb_req *req;
	size_t n = s->nreqs;
	int alive = 1;

	s->alive = &alive;
	while (n-- > 0 && (req = TAILQ_FIRST(&s->reqs)) != NULL) {
		TAILQ_REMOVE(&s->reqs, req, link);
		s->nreqs--;
		req->delivering = 1;
		req->cb(req->found, req->found == 1 ? &req->rec : NULL, req->arg);
		free(req);
		/* The callback may have closed the store (daemon shutting down). */
		if (!alive)
			return;
	}
	s->alive = NULL;
	if (!TAILQ_EMPTY(&s->reqs))
		event_active(s->deliver, EV_TIMEOUT, 0);
}

/*
 * store_sweep - one step of the background expiry of kind: delete the
 * expired or unreadable records among the next SWEEP_SCAN, at most
 * SWEEP_DEL of them, and remember where to go on. Bounding both numbers
 * bounds the step whatever the size of the store and the share of expired
 * records in it.
 */
static void store_sweep(struct lmdb *s, enum store_kind kind, int64_t now)
{
	struct store_sweep *sw = &s->sweep[kind];
	MDB_val k = {sw->len, sw->key}, v;
	struct store_rec rec;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc, scanned = 0, deleted = 0;

	if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
		return;
	if (mdb_cursor_open(txn, s->dbi[kind], &cur) != 0) {
		mdb_txn_abort(txn);
		return;
	}
	rc = mdb_cursor_get(cur, &k, &v, sw->len > 0 ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0 && scanned < SWEEP_SCAN && deleted < SWEEP_DEL) {
		scanned++;
		if (!rec_live(&v, &rec, now)) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			deleted++;
		}
		/* After a delete the cursor already stands on the next record; MDB_NEXT knows. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return;
	}
	/* At the end of the kind, the next step starts again from the top. */
	sw->len = rc == 0 && k.mv_size <= STORE_KEY_MAX ? k.mv_size : 0;
	if (sw->len > 0)
		memmove(sw->key, k.mv_data, sw->len);
	if (deleted == 0) {
		mdb_txn_abort(txn);
		return;
	}
	if (mdb_txn_commit(txn) == 0) {
		sw->removed += (unsigned long)deleted;
		s->dirty = 1;
	}
}

/*
 * store_tick - every second: a step of expiry, then a flush if anything
 * was written. A failed flush is tried again on the next tick; if the disk
 * is really gone, the writes themselves start failing and callers see it.
 */
static void store_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lmdb *s = arg;
	int64_t now = time(NULL);

	for (int kind = 0; kind < STORE_NKINDS; kind++)
		store_sweep(s, kind, now);
	if (s->dirty && mdb_env_sync(s->env, 1) == 0)
		s->dirty = 0;
}

void *store_lmdb_open(struct event_base *base, const char *state_dir, char *err, size_t errsz)
{
	static const struct timeval second = {1, 0};
	char path[PATH_MAX];
	struct lmdb *s;
	MDB_txn *txn;
	int rc, dead;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, STORE_FILE) >= sizeof(path)) {
		snprintf(err, errsz, "store: state directory name too long: %s", state_dir);
		return NULL;
	}
	if (mkdir(state_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "store: cannot create %s: %s", state_dir, strerror(errno));
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsz, "store: out of memory");
		return NULL;
	}
	TAILQ_INIT(&s->reqs);
	if ((rc = mdb_env_create(&s->env)) != 0) {
		snprintf(err, errsz, "store: cannot open %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_env_set_mapsize(s->env, STORE_MAPSIZE)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, STORE_NKINDS)) != 0 ||
	    (rc = mdb_env_open(s->env, path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOTLS, 0600)) != 0) {
		snprintf(err, errsz, "store: cannot open %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	s->opened = 1;
	/* Reader slots left behind by a process that was killed would pin old pages. */
	mdb_reader_check(s->env, &dead);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		snprintf(err, errsz, "store: %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	for (int kind = 0; kind < STORE_NKINDS; kind++) {
		rc = mdb_dbi_open(txn, store_kind_name(kind), MDB_CREATE, &s->dbi[kind]);
		if (rc != 0) {
			mdb_txn_abort(txn);
			snprintf(err, errsz, "store: %s: cannot open database %s: %s", path,
				 store_kind_name(kind), mdb_strerror(rc));
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		snprintf(err, errsz, "store: %s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	s->deliver = event_new(base, -1, 0, store_deliver, s);
	s->tick = event_new(base, -1, EV_PERSIST, store_tick, s);
	if (s->deliver == NULL || s->tick == NULL || event_add(s->tick, &second) < 0) {
		snprintf(err, errsz, "store: cannot create events");
		goto fail;
	}
	return s;
fail:
	lmdb_close(s);
	return NULL;
}

static struct store_req *lmdb_get(void *b, enum store_kind kind, const char *key, store_get_cb cb,
				  void *arg)
{
	struct lmdb *s = b;
	struct lmdb_req *req;
	MDB_val k;

	if ((unsigned)kind >= STORE_NKINDS || key_check(key, &k) < 0)
		return NULL;
	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->head.cancel = lmdb_cancel;
	req->s = s;
	req->cb = cb;
	req->arg = arg;
	req->found = store_lookup(s, kind, &k, &req->rec);
	TAILQ_INSERT_TAIL(&s->reqs, req, link);
	s->nreqs++;
	event_active(s->deliver, EV_TIMEOUT, 0);
	return &req->head;
}

static void lmdb_cancel(struct store_req *r)
{
	struct lmdb_req *req = (struct lmdb_req *)r;

	if (req == NULL || req->delivering)
		return;
	TAILQ_REMOVE(&req->s->reqs, req, link);
	req->s->nreqs--;
	free(req);
}

static int lmdb_put(void *b, enum store_kind kind, const char *key, const struct store_rec *rec)
{
	struct lmdb *s = b;
	unsigned char buf[STORE_VALSZ];
	MDB_val k, v = {sizeof(buf), buf};
	MDB_txn *txn;

	if ((unsigned)kind >= STORE_NKINDS || key_check(key, &k) < 0)
		return -1;
	store_lmdb_rec_encode(rec, buf);
	if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
		return -1;
	/* MDB_MAP_FULL lands here or in the commit: an error like any other. */
	if (mdb_put(txn, s->dbi[kind], &k, &v, 0) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if (mdb_txn_commit(txn) != 0)
		return -1;
	s->dirty = 1;
	return 0;
}

/* An expired record is deleted too, but reported as absent: it did not exist any more. */
static int lmdb_del(void *b, enum store_kind kind, const char *key)
{
	struct lmdb *s = b;
	struct store_rec rec;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, live;

	if ((unsigned)kind >= STORE_NKINDS || key_check(key, &k) < 0)
		return -1;
	if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
		return -1;
	rc = mdb_get(txn, s->dbi[kind], &k, &v);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? 0 : -1;
	}
	live = rec_live(&v, &rec, time(NULL));
	if (mdb_del(txn, s->dbi[kind], &k, NULL) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if (mdb_txn_commit(txn) != 0)
		return -1;
	s->dirty = 1;
	return live;
}

static int lmdb_list(void *b, enum store_kind kind, store_list_fn fn, void *arg)
{
	struct lmdb *s = b;
	char key[STORE_LIST_KEYSZ];
	int64_t now = time(NULL);
	struct store_rec rec;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, n = 0;

	if ((unsigned)kind >= STORE_NKINDS)
		return -1;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, s->dbi[kind], &cur) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t len = k.mv_size < sizeof(key) - 1 ? k.mv_size : sizeof(key) - 1;

		if (!rec_live(&v, &rec, now))
			continue;
		/* Bad keys reach store.c's check, which names them (see store_ops.h). */
		memcpy(key, k.mv_data, len);
		key[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if (key[i] == '\0')
				key[i] = 0x7f;
		n++;
		if (fn(key, &rec, arg) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? n : -1;
}

static long lmdb_count(void *b, enum store_kind kind)
{
	struct lmdb *s = b;
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	if ((unsigned)kind >= STORE_NKINDS)
		return -1;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	rc = mdb_stat(txn, s->dbi[kind], &st);
	mdb_txn_abort(txn);
	return rc == 0 ? (long)st.ms_entries : -1;
}

/* Also the cleanup of a half-opened store (opened still 0: nothing to flush). */
static void lmdb_close(void *b)
{
	struct lmdb *s = b;
	struct lmdb_req *req;

	if (s == NULL)
		return;
	if (s->alive != NULL)
		*s->alive = 0;
	while ((req = TAILQ_FIRST(&s->reqs)) != NULL) {
		TAILQ_REMOVE(&s->reqs, req, link);
		free(req);
	}
	if (s->deliver != NULL)
		event_free(s->deliver);
	if (s->tick != NULL)
		event_free(s->tick);
	if (s->env != NULL) {
		if (s->opened)
			mdb_env_sync(s->env, 1);
		mdb_env_close(s->env);
	}
	free(s);
}

/* The embedded store is one host's own: nobody to publish to. */
static int lmdb_publish(void *b, const char *msg)
{
	return 0;
}

static void lmdb_subscribe(void *b, store_msg_fn cb, void *arg)
{
}

static void lmdb_status(void *b, struct store_status *st)
{
	st->backend = "lmdb";
	st->connected = 1;
}

int store_lmdb_lookup(void *b, enum store_kind kind, const char *key, struct store_rec *rec)
{
	MDB_val k;

	if ((unsigned)kind >= STORE_NKINDS || key_check(key, &k) < 0)
		return -1;
	return store_lookup(b, kind, &k, rec);
}

const struct store_ops store_lmdb_ops = {
    .name = "lmdb",
    .get = lmdb_get,
    .put = lmdb_put,
    .del = lmdb_del,
    .list = lmdb_list,
    .count = lmdb_count,
    .publish = lmdb_publish,
    .subscribe = lmdb_subscribe,
    .status = lmdb_status,
    .close = lmdb_close,
};
