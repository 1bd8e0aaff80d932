/*
 * ctl_io.h - how mxguardctl talks: to the daemon over its control socket
 * (one request line, one JSON answer line), to the user when something
 * fails (a JSON object with --json, else a line on stderr), and to the
 * terminal of the live view, which must be given back on every exit path.
 */
#ifndef MXG_CTL_IO_H
#define MXG_CTL_IO_H

#include <sys/socket.h>
#include <sys/un.h>

#include "ctl_json.h"

struct cfg;

/* Exit codes (DIAGNOSTICS above, and mxguardctl(8)). */
#define CTL_OK 0
#define CTL_EFAIL 1  /* the daemon said no, or another error */
#define CTL_EUSAGE 2 /* bad usage */
#define CTL_EDOWN 3  /* daemon not reachable */
#define CTL_EPERM 4  /* no permission on the control socket */

#define CTL_ANSWER_MAX (64 << 20) /* a list of millions of records, at most */
#define CTL_TIMEOUT 30		  /* seconds to wait for an answer */

/* The options of the daemon commands. */
struct ctl {
	const char *config;					/* -c */
	const char *sock;					/* -s */
	int json;						/* --json */
	int table;						/* --table (status) */
	int once;						/* --once (top) */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the socket */
};

/*
 * ctl_io_fail - report an error the way the user asked for (ctl NULL: as
 * text): a JSON object on stdout with --json (scripts parse stdout), else
 * a line on stderr; the terminal is given back first. Returns code.
 */
int ctl_io_fail(const struct ctl *ctl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * ctl_io_config - load the configuration at path (NULL: the default);
 * NULL after an error was reported. The caller unrefs it.
 */
struct cfg *ctl_io_config(const struct ctl *ctl, const char *path);

/*
 * ctl_io_call - send one request line, read the one-line answer into
 * *answer_r (the caller frees it). The socket is found on first use: -s,
 * else the configuration's control_socket. Returns CTL_OK, or an exit
 * code after reporting (3: not reachable, 4: permission).
 */
int ctl_io_call(struct ctl *ctl, const char *line, char **answer_r);

/*
 * ctl_io_parse - answer (taken, freed either way) as a tree; a daemon
 * error ("ok":false) is reported and becomes exit code 1. Returns CTL_OK
 * with *v_r set (the caller frees it), or an exit code.
 */
int ctl_io_parse(const struct ctl *ctl, char *answer, struct jv **v_r);

/*
 * ctl_io_action - run the request line and print the daemon's JSON line
 * as it comes (stdout), and a refusal also in words on stderr unless
 * --json. Returns an exit code.
 */
int ctl_io_action(struct ctl *ctl, const char *line);

/*
 * ctl_io_tty_enter - raw keys without echo, the alternate screen, cursor
 * hidden; 0, or -1 (errno set). ctl_io_tty_leave gives the terminal back
 * as it was; idempotent, and safe when it was never taken.
 */
int ctl_io_tty_enter(void);
void ctl_io_tty_leave(void);

#endif
