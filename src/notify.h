/*
 * notify.h - notices to the admin: block bursts, attack start, attack end.
 *
 * Every notice goes to the log. When configured, it is also mailed
 * (notify_recipient, through notify_relay or the backend) and passed to
 * notify_command (run without a shell; the data in MXG_* environment
 * variables). Rate-limited per kind: at most one notice of a kind per
 * notify_interval; the ones held back are counted and reported with the
 * next one, so an attack never turns into a mail storm. Attack end
 * notices always go out when the matching start notice did.
 */
#ifndef MXG_NOTIFY_H
#define MXG_NOTIFY_H

#include <stddef.h>

struct mxg;
struct notify;

/* NOTIFY_TEST: only for the control verb notify-test, to check the delivery. */
enum notify_kind {
	NOTIFY_BLOCKS,
	NOTIFY_ATTACK_START,
	NOTIFY_ATTACK_END,
	NOTIFY_TEST,
	NOTIFY_NKINDS
};

/* What a notice keeps of its caller's data (more is cut). */
#define NOTIFY_KV_MAX 32      /* data items per notice */
#define NOTIFY_VALUE_MAX 4096 /* longest data value, subject or body line */
#define NOTIFY_BODY_MAX 65536 /* longest body */

/* One piece of data: MXG_<NAME> in the command's environment, "Name: value" in mail. */
struct notify_kv {
	const char *name; /* upper case, e.g. "GROUP", "SOURCES", "TOP_SOURCES" */
	const char *value;
};

/*
 * notify_new - the notifier for mxg (uses mxg->base and mxg->cfg at send
 * time; installs a SIGCHLD event on mxg->base) and forks the helper that
 * runs notify_command: call it before the process is confined
 * (sandbox_enter), after the privilege drop (the commands run as run_as).
 * Returns NULL when out of memory or when the helper cannot be forked
 * (logged).
 */
struct notify *notify_new(struct mxg *mxg);

/*
 * notify_send - one notice of kind: subject (one line) and body (lines
 * ending in \n), plus kv data. Logs it at once; mail and command follow
 * asynchronously. Never blocks the loop, never fails the caller.
 */
void notify_send(struct notify *n, enum notify_kind kind, const char *subject, const char *body,
		 const struct notify_kv *kv, int nkv);

/* notify_kind_name - "blocks", "attack_start", "attack_end", "test". */
const char *notify_kind_name(enum notify_kind kind);

/* notify_free - stop pending mail; the helper exits, running commands finish. */
void notify_free(struct notify **np);

#endif
