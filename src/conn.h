/*
 * conn.h - one client connection from accept to close.
 *
 * A connection is small and grows only while it needs to: the input buffer
 * exists while a partial command line is waiting, the hand-off state while
 * mxguard talks to the backend, the relay state once bytes flow both ways.
 */
#ifndef MXG_CONN_H
#define MXG_CONN_H

#include <stdint.h>
#include <sys/time.h>

#include <event2/util.h>

#include "netaddr.h"
#include "smtpcmd.h"

struct mxg;
struct cfg;
struct event;
struct listener;
struct handoff;
struct relay;
struct svconn;
struct dns_req;
struct store_req;
struct dnsbl_lookups;
struct greyspf;

enum conn_stage {
	STAGE_GREET,
	STAGE_DIALOGUE,
	STAGE_CONNECT,
	STAGE_HANDSHAKE,
	STAGE_REPLAY,
	STAGE_RELAY,
	STAGE_TARPIT,
};

enum conn_action { ACT_PASS, ACT_INSPECT };

/* How a connection ended; named in its close line. */
enum conn_end {
	END_NONE,
	END_QUIT,
	END_CLIENT_EOF,
	END_CLIENT_ERROR,
	END_BACKEND_EOF,
	END_BACKEND_ERROR,
	END_BACKEND_FAIL,
	END_TIMEOUT,
	END_ERRORS,
	END_SHUTDOWN,
	END_TARPIT_DROP,
	END_SILENT, /* survived the tarpit, then said nothing to the backend */
};

struct conn {
	struct mxg *mxg;
	struct conn *prev, *next;
	struct cfg *cfg;	/* the configuration it was accepted under */
	struct listener *lst;	/* its counters move (listener_stats) */
	struct event *wev;	/* client write, only while output is blocked */
	/* Dialogue input: a partial line, allocated only while one is pending. */
	char *in;
	/* Client output that the socket did not take at once. */
	char *out;
	/*
	 * What the client said, for the replay at hand-off; read-only here,
	 * set with conn_line_set: the three share one allocation.
	 */
	char *helo;		/* whole HELO/EHLO line, CRLF included */
	char *mail;		/* whole MAIL line */
	char *pending;		/* the command that triggered the hand-off */
	struct handoff *ho;
	struct relay *relay;
	struct svconn *svc;	/* service.c: backend connect in progress */
	/* The taRgrey engine (grey.c, tarpit.c): verdict and pending lookups. */
	char *name;		/* verified reverse name; NULL: unknown */
	struct dns_req *dreq;	/* reverse name lookup in flight */
	struct store_req *sreq; /* store lookup in flight */
	struct dnsbl_lookups *bl; /* DNSBL/NS queries, only when configured (dnsbl.c) */
	struct greyspf *spf;	/* the sender's SPF step, suspects only (greyspf.c) */
	struct netaddr client, local;
	struct timeval start;
	uint64_t bytes_in, bytes_out;
	uint32_t held_ms;	/* tarpit start, in ms since start */
	uint32_t line_ms;	/* the pending partial line began (dialogue); the
				 * polite close began (closing): ms since start */
	uint32_t outlen;
	int fd;			/* client socket; -1 once the relay owns it */
	uint16_t inlen;
	uint16_t incap;		/* size of in */
	uint16_t inscan;	/* held: in[0..inscan) was checked as pipelining */
	uint16_t errors;
	/* Small fields together: a held connection is what mxguard has most of. */
	uint8_t stage : 3;	/* enum conn_stage */
	uint8_t action : 1;	/* enum conn_action */
	uint8_t end : 4;	/* enum conn_end */
	uint8_t closing : 1;	/* final reply sent, draining input */
	uint8_t discard : 1;	/* skipping the rest of an overlong line */
	uint8_t esmtp : 1;	/* client said EHLO */
	uint8_t deciding : 1;	/* grey_decide waits for DNS or the store */
	uint8_t counted : 1;	/* its verdict is in the metrics (once per connection) */
	uint8_t shield_lim : 2;	/* SHIELD_LIM_* of shield_conn_open, for its close */
	uint8_t attack_suspect : 1; /* under attack and unknown: a suspect (shield.c) */
	uint8_t pipe_end : 1;	/* held: a last-in-group command (DATA...) came */
	uint8_t pipe_opaque : 1; /* held: BDAT data follows, not checked further */
	uint8_t survivor : 1;	/* handed off after surviving the tarpit */
	uint8_t queued : 1;	/* its decision waits for the loop (grey.c) */
	uint8_t ev_set : 1;	/* the read event is set: conn_ev */
	/* The SPF step's outcome (greyspf.c): enum spf_result, reason. */
	uint8_t spf_done : 1;
	uint8_t spf_result : 3;
	uint8_t dns_state : 2;	/* enum grey_dns_state */
	uint8_t spf_why;	/* index of the reason in greyspf.c's table */
	uint8_t pending_verb;	/* enum smtp_verb */
	uint8_t verdict;	/* enum verdict, valid once dns_state is final */
	uint8_t step;		/* where grey_decide is in its chain */
};

/*
 * conn_new - a new client socket fd from listener lst (client address sa):
 * the connection is made, counted and linked into mxg->conns, with no
 * phase started; the caller (the accept loop) starts one. Returns NULL
 * when memory runs out, with fd closed.
 */
struct conn *conn_new(struct mxg *mxg, struct listener *lst, int fd, const struct sockaddr *sa,
		      int salen);

/*
 * What a phase of a connection's life (the dialogue, the hold, the
 * hand-off, the relay, a guarded service), or an engine that keeps state
 * per connection, asks of the connection layer. Each hook may be NULL.
 */
struct conn_phase {
	const char *name;
	unsigned stages;		 /* flushed applies in these stages: 1u << STAGE_... */
	void (*flushed)(struct conn *c); /* the output queue emptied (reading resumes) */
	void (*finish)(struct conn *c);	 /* conn_finish: stop what would answer later */
	void (*release)(struct conn *c); /* conn_close: free this phase's state of c */
};

/*
 * conn_phase_add - register p (static storage) for every connection, once,
 * at start-up before the first accept; hooks run in registration order.
 * Registering the same p twice is harmless; more than 8 phases is a bug.
 */
void conn_phase_add(const struct conn_phase *p);

/* The saved command lines of a connection (its helo, mail, pending fields). */
enum conn_line { CONN_HELO, CONN_MAIL, CONN_PENDING };

/*
 * conn_line_set - save line (len bytes, without its CRLF) with CRLF added
 * as c's HELO, MAIL or pending line, replacing the one before; line NULL
 * forgets it. The three lines live in one allocation of their exact size
 * (held clients keep them through the hold, and they are what mxguard has
 * most of), so each change copies the others: lines are short and change a
 * few times per connection. Returns 0, or -1 when memory runs out (the
 * lines are unchanged).
 */
int conn_line_set(struct conn *c, enum conn_line which, const char *line, size_t len);

/* conn_lines_free - forget c's saved lines (all three fields NULL). */
void conn_lines_free(struct conn *c);

/*
 * conn_read_event - set c's client read event (conn_ev) to fd, what and cb
 * (arg c), not added; one it had before is deleted first. The event lives
 * in the connection's own allocation (conn_new makes room after the
 * struct): a held client is what mxguard has most of, and a separate
 * event cost a 144-byte chunk. Returns the event. Only for connections from
 * conn_new.
 */
struct event *conn_read_event(struct conn *c, evutil_socket_t fd, short what,
			      void (*cb)(evutil_socket_t fd, short what, void *arg));

/* conn_read_event_drop - delete c's read event: conn_ev(c) is NULL. */
void conn_read_event_drop(struct conn *c);

/* conn_ev - c's client read event (dialogue, tarpit, drain), or NULL. */
static inline struct event *conn_ev(struct conn *c)
{
	return c->ev_set ? (struct event *)(void *)(c + 1) : NULL;
}

/*
 * conn_write - send bytes to the client in the dialogue. What the socket
 * does not take at once is queued, and reading commands pauses until the
 * queue is flushed (a pipelining client cannot make mxguard buffer without
 * bound). Returns 0, or -1 after the connection was closed on an error.
 */
int conn_write(struct conn *c, const char *buf, size_t len);

/* conn_printf - conn_write with a format. */
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * conn_finish - send a last reply (or none when reply is NULL), stop
 * reading commands, and close politely: half-close, drain what the client
 * still sends for a few seconds, then close. end is recorded for the log.
 * Returns 0, or -1 when the connection is already gone (write error).
 */
int conn_finish(struct conn *c, const char *reply, enum conn_end end);

/*
 * conn_discard - read and drop what the client socket fd holds now (at most
 * 64 KiB a call), counted in c->bytes_in: closing with unread input would
 * send an RST. Returns 0 when nothing more is there for now, -1 at EOF or
 * on an error (the caller closes).
 */
int conn_discard(struct conn *c, int fd);

/* conn_close - close now, write the connection's log line, free it all. */
void conn_close(struct conn *c, enum conn_end end);

/* conn_read_pause / conn_read_resume - stop or restart client read events. */
void conn_read_pause(struct conn *c);
void conn_read_resume(struct conn *c);

/* conn_ms - milliseconds since the connection was accepted. */
uint32_t conn_ms(const struct conn *c);

/*
 * conn_dialogue_left - how long the dialogue may still last, in ms: the
 * least of the idle bound (smtp_timeout from now), the line bound (a partial
 * line must complete within smtp_timeout of its first byte) and the total
 * bound (dialogue_timeout from accept). 0 when one has passed.
 */
uint32_t conn_dialogue_left(const struct conn *c);

/* conn_shutdown_all - SIGTERM: end dialogues, leave relays to finish. */
void conn_shutdown_all(struct mxg *mxg);

/* conn_maybe_exit - when stopping and the last connection is gone, stop the loop. */
void conn_maybe_exit(struct mxg *mxg);

/* conn_kill_all - the shutdown bound expired: close every connection. */
void conn_kill_all(struct mxg *mxg);

/*
 * conn_stage - c moves to stage (enum conn_stage): the counts by stage
 * that the status and the metrics read (mxg->stage_open) follow it.
 */
void conn_stage(struct conn *c, int stage);

/* conn_stage_name, conn_end_name - for logs and the control socket. */
const char *conn_stage_name(int stage);
const char *conn_end_name(int end);

#endif
