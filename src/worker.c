/*
 * worker.c - workers = N: the master process and its workers.
 *
 * With N > 1 the process that started binds everything (listen.c gives
 * each listener N sockets in one SO_REUSEPORT group, with a program that
 * keeps each source network on one socket), starts the nftables helper,
 * then forks N workers and becomes their master. Each worker keeps its own
 * socket of every listener, drops privileges and runs the whole daemon:
 * dialogue, engine, shield, store. Worker 0 also serves the control
 * socket, /metrics and the policy service.
 *
 * The master serves no client and reads nothing from the network: it
 * waits for signals and dead children. It forwards SIGHUP and SIGTERM,
 * and starts a worker that died again a second later. A worker's
 * listening sockets stay open in the master, so the kernel's group keeps
 * its order (and each network its worker) and connections that arrive
 * meanwhile wait in the dead worker's queue for its successor. The master
 * stays as it started (root, like Postfix's master) because a worker it
 * starts again must drop privileges itself, as the first did.
 *
 * What must be global is shared through wshm.c: each worker's counters
 * (the status and /metrics of worker 0 sum them), each worker's count of
 * distinct sources per listener group (the flood detector adds the
 * others' to its own: a network's sources all go to one worker, so the
 * sets do not overlap), and a ring of messages. On the ring go what the
 * store would send to other instances (blocks, unblocks, attack states:
 * with the embedded store a daemon's workers are those instances; on Redis
 * each worker is one already), and the operator's changes that each
 * worker keeps in memory (white entries, flushes, reloads).
 *
 * With workers = 1 nothing is forked: the daemon is one process, as it
 * always was, with one slot.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "control.h"
#include "fw.h"
#include "grey.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "mxguard.h"
#include "policy.h"
#include "shield.h"
#include "store.h"
#include "worker.h"
#include "wshm.h"

#define WORKER_RESTART_DELAY 1 /* seconds between a worker's death and its restart */
#define WORKER_TICK_MS 250     /* the ring and the detector's counts, this often */
#define WORKER_START_WAIT 60   /* seconds the first start may take (store, lists) */

/* A worker's own part (mxg->wk): its timer and its place in the ring. */
struct worker {
	struct event *tick;
	uint64_t next; /* the ring's next message for this worker */
	unsigned ticks;
	pid_t master;
};

/* worker_child - what the master leaves to worker w after fork. */
static void worker_child(struct mxg *mxg, int w, const sigset_t *old)
{
	struct wshm_slot *s = wshm_slot(mxg->wshm, w);
	char name[24]; /* the kernel keeps 15 bytes */

	/* A reload before the loop's own handler is set must not end the worker. */
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_SETMASK, old, NULL);
	/* Only the master speaks to systemd (NotifyAccess=main). */
	unsetenv("NOTIFY_SOCKET");
	if ((mxg->wk = calloc(1, sizeof(*mxg->wk))) == NULL)
		log_fatal("worker %d: out of memory", w);
	mxg->wk->master = getppid();
	mxg->worker = w;
	/*
	 * A successor carries on the counters: they must never go down in
	 * the sums the status and the scrapes show. The gauge does not.
	 */
	wshm_restore(mxg->wshm, w, mxg);
	mxg->stats.relay_bytes = 0;
	s->pid = getpid();
	s->started = time(NULL);
	s->ready = 0;
	listen_keep(mxg, w);
	/* The master removes the sockets' paths when it stops, not a worker. */
	control_disown(mxg->control);
	policy_disown(mxg);
	if (w != 0) {
		control_close(&mxg->control);
		metrics_close(mxg);
		policy_close(mxg);
	}
	snprintf(name, sizeof(name), "mxguard-w%d", w);
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

/* worker_spawn - fork worker w. Returns its pid in the master, 0 in the worker, -1. */
static pid_t worker_spawn(struct mxg *mxg, int w, const sigset_t *old)
{
	pid_t pid = fork();

	if (pid == 0) {
		worker_child(mxg, w, old);
		return 0;
	}
	if (pid < 0)
		log_warn_errno("cannot start worker %d: fork", w);
	return pid;
}

/*
 * worker_gone - the master's bookkeeping for a worker that ended: its
 * index (-1: not a worker), and in *was_ready whether it had started.
 */
static int worker_gone(struct mxg *mxg, pid_t pid, int status, int *was_ready)
{
	int n = wshm_nworkers(mxg->wshm);

	for (int i = 0; i < n; i++) {
		struct wshm_slot *s = wshm_slot(mxg->wshm, i);

		if (s->pid != pid)
			continue;
		*was_ready = s->ready;
		s->pid = 0;
		s->ready = 0;
		wshm_clear_open(mxg->wshm, i);
		if (WIFSIGNALED(status))
			log_warn("worker %d (pid %ld) killed by signal %d", i, (long)pid,
				 WTERMSIG(status));
		else if (WEXITSTATUS(status) != 0)
			log_warn("worker %d (pid %ld) exited with status %d", i, (long)pid,
				 WEXITSTATUS(status));
		else
			log_info("worker %d (pid %ld) stopped", i, (long)pid);
		return i;
	}
	return -1; /* the nftables helper, or a worker already counted */
}

/* worker_signal - send sig to every running worker. */
static void worker_signal(struct mxg *mxg, int sig)
{
	for (int i = 0; i < wshm_nworkers(mxg->wshm); i++) {
		pid_t pid = wshm_slot(mxg->wshm, i)->pid;

		if (pid > 0)
			kill(pid, sig);
	}
}

/*
 * worker_master - the master's life after the first fork: it ends in
 * exit(). Returns only in a worker it started again, with its index.
 */
static int worker_master(struct mxg *mxg, const sigset_t *set, const sigset_t *old,
			 void (*notify)(const char *))
{
	int n = wshm_nworkers(mxg->wshm), stopping = 0, announced = 0, status;
	time_t due[CFG_MAX_WORKERS] = {0}, start = time(NULL);

	/* Inherited as ignored, children would be reaped before waitpid sees them. */
	signal(SIGCHLD, SIG_DFL);

	for (;;) {
		struct timespec ts = {WORKER_RESTART_DELAY, 0};
		int sig = sigtimedwait(set, NULL, &ts), live = 0, ready = 0;
		time_t now = time(NULL);
		pid_t pid;

		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				log_info("stopping on signal %d: stopping %d workers", sig, n);
				notify("STOPPING=1");
			}
			stopping = 1;
			worker_signal(mxg, SIGTERM);
		} else if (sig == SIGHUP) {
			log_info("reload: passing SIGHUP to %d workers", n);
			worker_signal(mxg, SIGHUP);
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			int was_ready = 0, w = worker_gone(mxg, pid, status, &was_ready);

			if (w < 0 || stopping)
				continue;
			/*
			 * A worker that could not start at all would only fail
			 * again. One that had started is restarted, even if the
			 * master had not yet seen all of them ready.
			 */
			if (!announced && !was_ready) {
				log_warn("worker %d failed at start: stopping", w);
				stopping = 2;
				worker_signal(mxg, SIGTERM);
				continue;
			}
			log_warn("worker %d: restarting in %ds", w, WORKER_RESTART_DELAY);
			due[w] = now + WORKER_RESTART_DELAY;
		}
		for (int i = 0; i < n; i++) {
			struct wshm_slot *s = wshm_slot(mxg->wshm, i);

			if (!stopping && s->pid == 0 && due[i] != 0 && now >= due[i]) {
				due[i] = 0;
				s->restarts++;
				pid = worker_spawn(mxg, i, old);
				if (pid == 0)
					return i; /* the new worker goes on in main() */
				if (pid < 0) {
					due[i] =
					    now + WORKER_RESTART_DELAY; /* fork failed: again */
				} else {
					s->pid =
					    pid; /* known before its first word, or its death */
					log_info("worker %d restarted (restart %u)", i,
						 s->restarts);
				}
			}
			live += s->pid != 0;
			ready += s->pid != 0 && s->ready;
		}
		if (!announced && ready == n) {
			announced = 1;
			log_info("ready: %d workers", n);
			notify("READY=1");
		} else if (!announced && !stopping && now - start > WORKER_START_WAIT) {
			log_warn("workers not ready after %ds: stopping", WORKER_START_WAIT);
			stopping = 2;
			worker_signal(mxg, SIGTERM);
		}
		if (stopping && live == 0)
			break;
	}
	listen_close(mxg);
	policy_close(mxg);
	metrics_close(mxg);
	control_close(&mxg->control);
	fw_stop(&mxg->fw);
	free(mxg->listeners);
	wshm_free(&mxg->wshm);
	cfg_unref(&mxg->cfg);
	log_info("stopped");
	exit(stopping == 2 ? 1 : 0);
}

int worker_fork(struct mxg *mxg, void (*notify)(const char *))
{
	int n = wshm_nworkers(mxg->wshm);
	sigset_t set, old;

	wshm_set_master(mxg->wshm, getpid());
	if (n <= 1) {
		struct wshm_slot *s = wshm_slot(mxg->wshm, 0);

		s->pid = getpid();
		s->started = time(NULL);
		mxg->worker = 0;
		return 0;
	}
	/* Held until the master waits for them; each worker unblocks them at once. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	for (int i = 0; i < n; i++) {
		pid_t pid = worker_spawn(mxg, i, &old);

		if (pid == 0)
			return i;
		if (pid < 0) {
			worker_signal(mxg, SIGTERM);
			log_fatal("cannot start %d workers", n);
		}
		wshm_slot(mxg->wshm, i)->pid = pid;
	}
	log_info("master: %d workers started", n);
	return worker_master(mxg, &set, &old, notify);
}

/* worker_msg - a line from another worker (the ring). */
static void worker_msg(const char *msg, void *arg)
{
	struct mxg *mxg = arg;
	char err[512];

	if (strncmp(msg, "peer ", 5) == 0 && mxg->store != NULL)
		store_sibling_msg(mxg->store, msg + 5);
	else if (strncmp(msg, "ctl ", 4) == 0)
		control_apply(mxg, msg + 4);
	else if (strcmp(msg, "reload") == 0)
		mxg_reload(mxg, err, sizeof(err));
}

/* worker_post_peer - the store's line for other instances, to the other workers. */
static int worker_post_peer(const char *msg, void *arg)
{
	struct mxg *mxg = arg;
	char line[WSHM_MSG_MAX];

	if (snprintf(line, sizeof(line), "peer %s", msg) >= (int)sizeof(line))
		return -1;
	return wshm_post(mxg->wshm, mxg->worker, line);
}

/*
 * worker_engine - the engine's status into this worker's slot, for worker
 * 0's status to add up (its store records are the same for every worker:
 * left out).
 */
static void worker_engine(struct mxg *mxg)
{
	char buf[WSHM_ENGINE_MAX];
	size_t n;
	json_t *o;

	if (mxg->engine == NULL || (o = json_object()) == NULL)
		return;
	grey_status(mxg->engine, o);
	json_object_del(o, "store");
	n = json_dumpb(o, buf, sizeof(buf) - 1, JSON_COMPACT);
	buf[n < sizeof(buf) ? n : 0] = '\0'; /* too long: nothing rather than a cut object */
	wshm_set_engine(mxg->wshm, mxg->worker, buf);
	json_decref(o);
}

static void worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mxg *mxg = arg;
	uint32_t local[DETECT_MAX_GROUPS] = {0};
	uint64_t lost;
	int ng;

	lost = wshm_poll(mxg->wshm, mxg->worker, &mxg->wk->next, worker_msg, mxg);
	if (lost > 0)
		log_warn("worker %d: %llu messages from other workers lost (fell behind)",
			 mxg->worker, (unsigned long long)lost);
	if (mxg->shield != NULL) {
		ng = shield_distinct(mxg->shield, local, DETECT_MAX_GROUPS);
		for (int g = 0; g < ng; g++)
			shield_distinct_others(mxg->shield, g,
					       wshm_distinct_others(mxg->wshm, mxg->worker, g));
	} else {
		ng = 0;
	}
	/* The counters (a walk of the connections) once a second. */
	if (mxg->wk->ticks++ % (1000 / WORKER_TICK_MS) == 0) {
		wshm_update(mxg->wshm, mxg->worker, mxg, local, ng);
		worker_engine(mxg);
	} else
		wshm_update_distinct(mxg->wshm, mxg->worker, local, ng);
	/* Orphaned (the master was killed): stop as on SIGTERM. */
	if (getppid() != mxg->wk->master)
		raise(SIGTERM);
}

int worker_started(struct mxg *mxg)
{
	struct timeval tv = {0, WORKER_TICK_MS * 1000};

	struct worker *wk = mxg->wk;

	if (wk != NULL) {
		wk->next = wshm_head(mxg->wshm);
		if (mxg->store != NULL)
			store_siblings(mxg->store, worker_post_peer, mxg);
		wk->tick = event_new(mxg->base, -1, EV_PERSIST, worker_tick_cb, mxg);
		if (wk->tick == NULL || event_add(wk->tick, &tv) < 0)
			return -1;
		/* The credentials changed since fork: the death signal is set now. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != wk->master)
			raise(SIGTERM);
	}
	wshm_slot(mxg->wshm, mxg->worker)->ready = 1;
	return 0;
}

int worker_reload(struct mxg *mxg, char *err, size_t errsz)
{
	if (mxg_reload(mxg, err, errsz) < 0)
		return -1;
	wshm_post(mxg->wshm, mxg->worker, "reload");
	return 0;
}

void worker_stop(struct mxg *mxg)
{
	if (mxg->wk != NULL) {
		if (mxg->wk->tick != NULL)
			event_free(mxg->wk->tick);
		free(mxg->wk);
		mxg->wk = NULL;
	}
	if (mxg->wshm != NULL)
		wshm_slot(mxg->wshm, mxg->worker)->ready = 0;
	wshm_free(&mxg->wshm);
}
