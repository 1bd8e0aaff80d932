/*
 * control.h - the control socket: a local stream socket that answers one
 * command per line ("status", "top", "reload", "ping", "list KIND", "add
 * white ENTRY", "del KIND KEY", "flush KIND") with one JSON line.
 * mxguardctl is its client.
 */
#ifndef MXG_CONTROL_H
#define MXG_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

struct mxg;
struct control;

/* The longest request line a client may send; a longer one is dropped. */
#define CONTROL_LINE_MAX 1024

/* What control_parse_request made of a request line. */
enum control_op {
	CONTROL_OP_BAD,		/* not a request: err says why */
	CONTROL_OP_STATUS,	/* "status" */
	CONTROL_OP_TOP,		/* "top" */
	CONTROL_OP_PING,	/* "ping" */
	CONTROL_OP_RELOAD,	/* "reload" */
	CONTROL_OP_NOTIFY_TEST, /* "notify-test [TEXT]": arg is TEXT, maybe "" */
	CONTROL_OP_LIST,	/* "list KIND" */
	CONTROL_OP_FLUSH,	/* "flush KIND" */
	CONTROL_OP_ADD,		/* "add white ENTRY", "add block ADDR [SECONDS]" */
	CONTROL_OP_DEL,		/* "del KIND KEY" */
	CONTROL_OP_EXPLAIN,	/* "explain ADDR [NAME]": arg is "ADDR [NAME]" (explain.c) */
	CONTROL_OP_RECORD_BAD,	/* a record verb with a known kind but otherwise wrong:
				   err says why, answered only when there is a store */
};

struct control_req {
	enum control_op op;
	int kind;  /* enum store_kind for the record verbs, else -1 */
	char *arg; /* ENTRY, ADDR, KEY, TEXT or "ADDR [NAME]", inside line; NULL if none */
	long secs; /* "add block": 1 to 31536000, 0 when not given */
	char err[512];
	char line[CONTROL_LINE_MAX + 1]; /* the request, cut by the parse */
};

/*
 * control_parse_request - classify one request line (buf[0..len), without
 * its line end) into rq and return rq->op. The line is hostile: any bytes,
 * a NUL byte ends it, more than CONTROL_LINE_MAX bytes is CONTROL_OP_BAD.
 * Pure: no I/O, no allocation; rq->arg points into rq->line, and every
 * string in rq is NUL-terminated within its array.
 */
int control_parse_request(const char *buf, size_t len, struct control_req *rq);

/*
 * control_open - create the socket at the configured path (a stale socket
 * file is replaced) owned by uid/gid with mode 0660, before privileges are
 * dropped. Returns NULL with a message in err.
 */
struct control *control_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz);

/*
 * control_set_reload - the function that "reload" calls (main.c's
 * mxg_reload). The program passes it in so that this module does not
 * depend on main.c; until it is set, "reload" answers an error.
 */
void control_set_reload(struct control *ctl, int (*reload)(struct mxg *, char *, size_t));

/* control_start - serve it on mxg->base. Returns 0 or -1. */
int control_start(struct control *ctl);

/* control_close - stop serving, remove the socket file, free. */
void control_close(struct control **ctlp);

/*
 * control_disown - the socket's path is another process's to remove (the
 * master's, with several workers): control_close only closes.
 */
void control_disown(struct control *ctl);

/*
 * control_apply - run request line (a change another worker made: "add
 * white ...", "del white ...", "flush ...") in this process, without
 * passing it on again; a failure is logged.
 */
void control_apply(struct mxg *mxg, const char *line);

#endif
