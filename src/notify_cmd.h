/*
 * notify_cmd.h - notify_command's helper: a process forked at start-up,
 * before the network process is confined, that runs the command for each
 * notice it is passed (without a shell, the data in MXG_* environment
 * variables), kills it after a timeout and logs how it ended.
 */
#ifndef MXG_NOTIFY_CMD_H
#define MXG_NOTIFY_CMD_H

#include "notify.h"

struct event_base;
struct notify_cmd;

/*
 * notify_cmd_start - fork the helper and watch for its death (a SIGCHLD
 * event on base; only the helper's status is collected). Call it before
 * sandbox_enter. Returns NULL (logged) when it cannot be started.
 */
struct notify_cmd *notify_cmd_start(struct event_base *base);

/*
 * notify_cmd_send - run command (notify_command; "" does nothing) for one
 * notice: its words split on white space, the first an absolute path; the
 * environment MXG_EVENT, MXG_SUBJECT, MXG_HOST (host), MXG_HELD, MXG_BODY
 * and MXG_<NAME> per kv item, values cut at NOTIFY_VALUE_MAX (the body at
 * NOTIFY_BODY_MAX). Never blocks: a helper that does not keep up, or one
 * that died, costs this notice's command, with a warning.
 */
void notify_cmd_send(struct notify_cmd *h, const char *command, const char *host,
		     enum notify_kind kind, const char *subject, const char *body, unsigned held,
		     const struct notify_kv *kv, int nkv);

/* notify_cmd_stop - close the helper's socket (it exits; running commands finish). */
void notify_cmd_stop(struct notify_cmd **hp);

#endif
