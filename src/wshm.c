/*
 * wshm.c - the workers' shared memory (wshm.h): slots and a message ring
 * in one anonymous MAP_SHARED mapping.
 *
 * Layout: a header (the ring's lock and head, the sizes), the ring, then
 * nworkers slots of a stride that holds the listeners' counters after each
 * slot. Nothing in it is a pointer the other processes could follow but
 * the histograms' bounds, which point into the binary they all share
 * (workers are forked, never exec'ed) and are taken from the reader's own
 * histograms anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "wshm.h"

#define WSHM_RING 128

struct wshm_msg {
	uint64_t seq; /* 1 + its place in the order of posting; 0: never written */
	int from;
	char text[WSHM_MSG_MAX];
};

struct wshm {
	pthread_mutex_t lock; /* the ring's; robust: a killed holder does not wedge it */
	uint64_t head;	      /* messages posted so far */
	int nworkers, nlisteners;
	pid_t master;
	size_t size, stride;
	struct wshm_msg ring[WSHM_RING];
	/* slots follow, at slots_off */
	size_t slots_off;
};

static size_t wshm_align(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

struct wshm *wshm_new(int nworkers, int nlisteners, char *err, size_t errsz)
{
	size_t stride = wshm_align(sizeof(struct wshm_slot) +
				   (size_t)nlisteners * sizeof(struct wshm_listener));
	size_t off = wshm_align(sizeof(struct wshm));
	size_t size = off + stride * (size_t)nworkers;
	pthread_mutexattr_t ma;
	struct wshm *w;

	w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED) {
		snprintf(err, errsz, "workers: cannot map %zu bytes of shared memory: %s", size,
			 strerror(errno));
		return NULL;
	}
	/* A fresh anonymous mapping is zeroed: only the lock needs setting up. */
	if (pthread_mutexattr_init(&ma) != 0 ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&w->lock, &ma) != 0) {
		snprintf(err, errsz, "workers: cannot make a process-shared lock");
		munmap(w, size);
		return NULL;
	}
	pthread_mutexattr_destroy(&ma);
	w->nworkers = nworkers;
	w->nlisteners = nlisteners;
	w->size = size;
	w->stride = stride;
	w->slots_off = off;
	return w;
}

int wshm_nworkers(const struct wshm *w)
{
	return w->nworkers;
}

void wshm_set_master(struct wshm *w, pid_t pid)
{
	w->master = pid;
}

pid_t wshm_master(const struct wshm *w)
{
	return w->master;
}

static const struct wshm_slot *wshm_cslot(const struct wshm *w, int i)
{
	return (const struct wshm_slot *)((const char *)w + w->slots_off + w->stride * (size_t)i);
}

struct wshm_slot *wshm_slot(struct wshm *w, int i)
{
	return (struct wshm_slot *)((char *)w + w->slots_off + w->stride * (size_t)i);
}

/* wshm_lst - the listeners after slot s. */
static struct wshm_listener *wshm_lst(const struct wshm_slot *s)
{
	return (struct wshm_listener *)(void *)((char *)(uintptr_t)s + sizeof(*s));
}

void wshm_update(struct wshm *w, int self, const struct mxg *mxg, const uint32_t *distinct,
		 int ngroups)
{
	struct wshm_slot *s = wshm_slot(w, self);
	struct wshm_listener *lst = wshm_lst(s);
	int n = mxg->nlisteners < w->nlisteners ? mxg->nlisteners : w->nlisteners;

	/* Kept up to date by the connection layer: no walk of the connections. */
	for (int k = 0; k < WSHM_STAGES; k++)
		s->stages[k] = mxg->stage_open[k];
	s->nconns = mxg->nconns;
	s->stats = mxg->stats;
	for (int i = 0; i < n; i++) {
		lst[i].stats = mxg->listeners[i].stats;
		lst[i].open = mxg->listeners[i].open;
	}
	for (int g = 0; distinct != NULL && g < ngroups && g < DETECT_MAX_GROUPS; g++)
		s->distinct[g] = distinct[g];
}

void wshm_update_distinct(struct wshm *w, int self, const uint32_t *distinct, int ngroups)
{
	struct wshm_slot *s = wshm_slot(w, self);

	for (int g = 0; g < ngroups && g < DETECT_MAX_GROUPS; g++)
		s->distinct[g] = distinct[g];
}

void wshm_restore(struct wshm *w, int self, struct mxg *mxg)
{
	const struct wshm_slot *s = wshm_cslot(w, self);
	const struct wshm_listener *lst = wshm_lst(s);
	struct hist h[3] = {mxg->stats.tarpit_drop_time, mxg->stats.dns_latency,
			    mxg->stats.backend_latency};

	/* The counts, with this process's own bucket bounds (a first slot has none). */
	mxg->stats = s->stats;
	mxg->stats.tarpit_drop_time.bounds = h[0].bounds;
	mxg->stats.tarpit_drop_time.nbounds = h[0].nbounds;
	mxg->stats.dns_latency.bounds = h[1].bounds;
	mxg->stats.dns_latency.nbounds = h[1].nbounds;
	mxg->stats.backend_latency.bounds = h[2].bounds;
	mxg->stats.backend_latency.nbounds = h[2].nbounds;
	for (int i = 0; i < mxg->nlisteners && i < w->nlisteners; i++)
		mxg->listeners[i].stats = lst[i].stats;
}

void wshm_clear_open(struct wshm *w, int i)
{
	struct wshm_slot *s = wshm_slot(w, i);
	struct wshm_listener *lst = wshm_lst(s);

	s->nconns = 0;
	memset(s->stages, 0, sizeof(s->stages));
	memset(s->distinct, 0, sizeof(s->distinct));
	for (int l = 0; l < w->nlisteners; l++)
		lst[l].open = 0;
}

/* wshm_hist_add - the counts of b into a (same bounds: the same binary's histogram). */
static void wshm_hist_add(struct hist *a, const struct hist *b)
{
	for (int i = 0; i <= HIST_MAX_BUCKETS; i++)
		a->counts[i] += b->counts[i];
	a->count += b->count;
	a->sum += b->sum;
}

/* The counters of struct mxg_stats before its histograms: 64-bit words all. */
#define WSHM_WORDS (offsetof(struct mxg_stats, tarpit_drop_time) / sizeof(uint64_t))
_Static_assert(offsetof(struct mxg_stats, tarpit_drop_time) % sizeof(uint64_t) == 0,
	       "struct mxg_stats: counters first, then the histograms");
_Static_assert(sizeof(struct wshm_listener) % sizeof(uint64_t) == 0,
	       "struct wshm_listener: 64-bit counters only");

void wshm_total(const struct wshm *w, const struct mxg *mxg, struct mxg_stats *st, int *nconns,
		uint32_t *stages, struct wshm_listener *lst)
{
	memset(st, 0, sizeof(*st));
	st->tarpit_drop_time = mxg->stats.tarpit_drop_time;
	st->dns_latency = mxg->stats.dns_latency;
	st->backend_latency = mxg->stats.backend_latency;
	memset(st->tarpit_drop_time.counts, 0, sizeof(st->tarpit_drop_time.counts));
	memset(st->dns_latency.counts, 0, sizeof(st->dns_latency.counts));
	memset(st->backend_latency.counts, 0, sizeof(st->backend_latency.counts));
	st->tarpit_drop_time.count = st->dns_latency.count = st->backend_latency.count = 0;
	st->tarpit_drop_time.sum = st->dns_latency.sum = st->backend_latency.sum = 0;
	*nconns = 0;
	memset(stages, 0, WSHM_STAGES * sizeof(*stages));
	if (lst != NULL)
		memset(lst, 0, (size_t)mxg->nlisteners * sizeof(*lst));
	for (int i = 0; i < w->nworkers; i++) {
		const struct wshm_slot *s = wshm_cslot(w, i);
		uint64_t *to = (uint64_t *)(void *)st;
		const uint64_t *from = (const uint64_t *)(const void *)&s->stats;

		for (size_t k = 0; k < WSHM_WORDS; k++)
			to[k] += from[k];
		wshm_hist_add(&st->tarpit_drop_time, &s->stats.tarpit_drop_time);
		wshm_hist_add(&st->dns_latency, &s->stats.dns_latency);
		wshm_hist_add(&st->backend_latency, &s->stats.backend_latency);
		if (s->pid != 0) {
			*nconns += s->nconns;
			for (int k = 0; k < WSHM_STAGES; k++)
				stages[k] += s->stages[k];
		}
		for (int l = 0; lst != NULL && l < mxg->nlisteners && l < w->nlisteners; l++) {
			uint64_t *lt = (uint64_t *)(void *)&lst[l];
			const uint64_t *lf = (const uint64_t *)(const void *)&wshm_lst(s)[l];

			for (size_t k = 0; k < sizeof(*lst) / sizeof(uint64_t); k++)
				lt[k] += lf[k];
		}
	}
}

void wshm_set_engine(struct wshm *w, int self, const char *text)
{
	struct wshm_slot *s = wshm_slot(w, self);
	size_t len = strnlen(text, sizeof(s->engine) - 1);

	/* A sequence lock: odd while writing, readers retry or give up. */
	__atomic_add_fetch(&s->engine_gen, 1, __ATOMIC_ACQ_REL);
	memcpy(s->engine, text, len);
	s->engine[len] = '\0';
	__atomic_add_fetch(&s->engine_gen, 1, __ATOMIC_ACQ_REL);
}

int wshm_engine(const struct wshm *w, int i, char *buf, size_t size)
{
	const struct wshm_slot *s = wshm_cslot(w, i);

	for (int tries = 0; tries < 3; tries++) {
		uint32_t g = __atomic_load_n(&s->engine_gen, __ATOMIC_ACQUIRE);

		if (g & 1)
			continue;
		memcpy(buf, s->engine, size < sizeof(s->engine) ? size : sizeof(s->engine));
		buf[size - 1] = '\0';
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->engine_gen, __ATOMIC_ACQUIRE) == g)
			return buf[0] != '\0' ? 0 : -1;
	}
	return -1;
}

uint32_t wshm_distinct_others(const struct wshm *w, int self, int g)
{
	uint64_t n = 0;

	if (g < 0 || g >= DETECT_MAX_GROUPS)
		return 0;
	for (int i = 0; i < w->nworkers; i++)
		if (i != self && wshm_cslot(w, i)->pid != 0)
			n += wshm_cslot(w, i)->distinct[g];
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* wshm_lock - take the ring's lock; a holder that died left it consistent enough. */
static void wshm_lock(struct wshm *w)
{
	if (pthread_mutex_lock(&w->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&w->lock);
}

int wshm_post(struct wshm *w, int from, const char *msg)
{
	size_t len = strlen(msg);
	struct wshm_msg *m;

	if (len >= WSHM_MSG_MAX)
		return -1;
	if (w->nworkers < 2)
		return 0;
	wshm_lock(w);
	m = &w->ring[w->head % WSHM_RING];
	m->from = from;
	memcpy(m->text, msg, len + 1);
	m->seq = ++w->head;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

uint64_t wshm_head(struct wshm *w)
{
	uint64_t h;

	wshm_lock(w);
	h = w->head;
	pthread_mutex_unlock(&w->lock);
	return h;
}

uint64_t wshm_poll(struct wshm *w, int self, uint64_t *next, void (*fn)(const char *msg, void *arg),
		   void *arg)
{
	char text[WSHM_MSG_MAX];
	uint64_t lost = 0;

	for (;;) {
		int from;

		wshm_lock(w);
		if (*next >= w->head) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		if (w->head - *next > WSHM_RING) {
			lost += w->head - WSHM_RING - *next;
			*next = w->head - WSHM_RING;
		}
		const struct wshm_msg *m = &w->ring[*next % WSHM_RING];

		from = m->from;
		memcpy(text, m->text, sizeof(text));
		text[sizeof(text) - 1] = '\0';
		(*next)++;
		pthread_mutex_unlock(&w->lock);
		/* Outside the lock: fn may post, and takes its time. */
		if (from != self)
			fn(text, arg);
	}
	return lost;
}

void wshm_free(struct wshm **wp)
{
	struct wshm *w = *wp;

	*wp = NULL;
	if (w != NULL)
		munmap(w, w->size);
}
