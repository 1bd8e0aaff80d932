/*
 * policy.c - the Postfix policy service (policy.h).
 *
 * Postfix's smtpd connects to a policy_listen socket and sends, for each
 * restriction that names check_policy_service, one request of name=value
 * lines and an empty line; it waits for "action=...", then may send the
 * next request on the same connection. At protocol_state RCPT the request
 * becomes a decision of the taRgrey engine, the front's own: the client
 * address, the verified name Postfix looked up (client_name, when it is not
 * "unknown"), the HELO name, the sender and the recipient are put in a
 * struct conn without a socket, as the lines the engine reads, and
 * grey_decide judges it (lists, HELO, sender NS, DNSBL/DNSWL, S25R, the
 * auto-whitelist, the greylist triplets in the shared store). The answer:
 *
 *   pass                       DUNNO (PREPEND X-Greylist: for a suspect,
 *                              with policy_prepend = yes)
 *   greylisted (new, early)    DEFER_IF_PERMIT policy_greylist_text
 *   tarpit (targrey, starpit)  DEFER_IF_PERMIT as well: holding the answer
 *                              would hold an smtpd process, the very cost
 *                              the front exists to avoid; the deferral is
 *                              recorded as a tarpit drop, so the retry is
 *                              greylisted from this first sighting
 *   a client list's reply      that reply ("550 5.7.1 ..."), as the front
 *   store or DNS failure       policy_fail_action: DEFER_IF_PERMIT or DUNNO
 *   mode warn                  DUNNO (the engine logs what it would do)
 *   other protocol_state       DUNNO
 *   malformed, too big         DUNNO, logged escaped (too big: then closed)
 *
 * Bounds: POLICY_REQ_MAX bytes per request (read no further while one is
 * incomplete), one request decided at a time per connection (reading waits
 * for the answer: Postfix never sends the next one before), policy_timeout
 * idle, POLICY_MAX_CONNS connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "config.h"
#include "conn.h"
#include "grey.h"
#include "log.h"
#include "mxguard.h"
#include "netaddr.h"
#include "policy.h"
#include "policyproto.h"
#include "rules.h"
#include "smtpcmd.h"
#include "unixsock.h"

#define POLICY_MAX_LISTEN 8
/* Postfix opens one connection per smtpd process: a few hundred at most. */

struct policy_listener {
	int fd;
	int is_unix;
	char name[120]; /* "127.0.0.1:10023" or "unix:/path" */
	struct evconnlistener *evl;
};

/*
 * One policy connection. The struct conn comes first: the engine's hooks
 * give back the conn, and the connection is found from it.
 */
struct policy_sess {
	struct conn c;
	struct policy *p;
	struct bufferevent *bev;
	struct policy_sess *prev, *next;
	char instance[64];    /* of the request being decided, for the log */
	uint8_t deciding : 1; /* c is with the engine: read nothing more */
	uint8_t closing : 1;  /* close once the output is written */
	uint8_t in_start : 1; /* inside policy_request: a lost decision waits */
	uint8_t lost : 1;
	uint8_t last; /* enum policy_action of the last answer */
};

struct policy {
	struct mxg *mxg;
	struct policy_listener lst[POLICY_MAX_LISTEN];
	int nlst;
	struct policy_sess *sessions;
	int nsess;
	uint64_t counts[POLICY_NACTIONS];
	uint64_t refused; /* connections over POLICY_MAX_CONNS */
	int disowned;	  /* the unix sockets' paths are the master's to remove */
};

static const char *const policy_action_names[POLICY_NACTIONS] = {
    "dunno", "defer", "prepend", "reject", "failed", "malformed",
};

const char *policy_action_name(int action)
{
	return action >= 0 && action < POLICY_NACTIONS ? policy_action_names[action] : "?";
}

/* ---- listeners -------------------------------------------------------- */

/*
 * policy_parse_one - one policy_listen item into a socket address (a
 * sockaddr_un for "unix:PATH"). Returns 0, or -1 with the message in err.
 */
static int policy_parse_one(const char *item, struct sockaddr_storage *ss, socklen_t *len,
			    int *is_unix, char *err, size_t errsz)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(item, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const char *path = item + 5;

		if (path[0] != '/' || strlen(path) >= sizeof(sun->sun_path)) {
			snprintf(err, errsz,
				 "policy_listen: %.200s: a unix socket needs an absolute path of at"
				 " most %zu bytes",
				 item, sizeof(sun->sun_path) - 1);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path) + 1);
		*len = sizeof(*sun);
		*is_unix = 1;
		return 0;
	}
	struct netaddr na;
	char why[200];

	if (netaddr_parse(item, &na, why, sizeof(why)) < 0) {
		snprintf(err, errsz,
			 "policy_listen: %.200s: %s (host:port, [v6]:port or unix:PATH)", item,
			 why);
		return -1;
	}
	memcpy(ss, &na.ss, na.len);
	*len = na.len;
	*is_unix = 0;
	return 0;
}

/* policy_items - policy_listen split at spaces and commas into items (a copy in buf). */
static int policy_items(const char *value, char *buf, size_t bufsz, char **items, int max,
			char *err, size_t errsz)
{
	int n = 0;

	if (snprintf(buf, bufsz, "%s", value) >= (int)bufsz) {
		snprintf(err, errsz, "policy_listen: too long");
		return -1;
	}
	for (char *save = NULL, *t = strtok_r(buf, " ,\t", &save); t != NULL;
	     t = strtok_r(NULL, " ,\t", &save)) {
		if (n == max) {
			snprintf(err, errsz, "policy_listen: more than %d addresses", max);
			return -1;
		}
		items[n++] = t;
	}
	return n;
}

int policy_check(const struct cfg *cfg, char *err, size_t errsz)
{
	char buf[4096], *items[POLICY_MAX_LISTEN];
	int n = policy_items(cfg->policy_listen, buf, sizeof(buf), items, POLICY_MAX_LISTEN, err,
			     errsz);

	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int is_unix;

		if (policy_parse_one(items[i], &ss, &len, &is_unix, err, errsz) < 0)
			return -1;
	}
	return n < 0 ? -1 : 0;
}

int policy_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	char buf[4096], *items[POLICY_MAX_LISTEN];
	int n = policy_items(mxg->cfg->policy_listen, buf, sizeof(buf), items, POLICY_MAX_LISTEN,
			     err, errsz);
	struct policy *p;

	if (n <= 0)
		return n;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	p->mxg = mxg;
	mxg->policy = p;
	for (int i = 0; i < n; i++) {
		struct policy_listener *l = &p->lst[i];
		struct sockaddr_storage ss;
		socklen_t len;
		int one = 1, rc;

		if (policy_parse_one(items[i], &ss, &len, &l->is_unix, err, errsz) < 0)
			return -1;
		snprintf(l->name, sizeof(l->name), "%s", items[i]);
		l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (l->fd < 0) {
			snprintf(err, errsz, "policy_listen %s: socket: %s", l->name,
				 strerror(errno));
			return -1;
		}
		p->nlst = i + 1;
		if (l->is_unix) {
			/*
			 * 0666: Postfix's smtpd runs as another user, and the
			 * socket's directory is what limits who reaches it, as
			 * Postfix's own private/.
			 */
			rc = unixsock_bind_as(l->fd, (struct sockaddr_un *)&ss, uid, gid, 0111);
		} else {
			setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ss.ss_family == AF_INET6)
				setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			rc = bind(l->fd, (struct sockaddr *)&ss, len);
		}
		if (rc < 0 || listen(l->fd, 128) < 0) {
			snprintf(err, errsz, "policy_listen %s: %s", l->name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- connections ------------------------------------------------------- */

/* policy_req_clear - free what the last request put in s->c (its decision is over). */
static void policy_req_clear(struct policy_sess *s)
{
	struct conn *c = &s->c;

	grey_conn_free(c);
	conn_lines_free(c);
	cfg_unref(&c->cfg);
}

static void policy_sess_free(struct policy_sess *s)
{
	struct policy *p = s->p;

	policy_req_clear(s);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		p->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	p->nsess--;
	free(s);
}

/* policy_answer - write action (and text) to Postfix, count it. */
static void policy_answer(struct policy_sess *s, enum policy_action kind, const char *action,
			  const char *text)
{
	char out[POLICY_ANSWER_MAX];
	size_t n = policyproto_answer(out, sizeof(out), action, text);

	s->p->counts[kind]++;
	s->last = (uint8_t)kind;
	if (bufferevent_write(s->bev, out, n) < 0)
		s->closing = 1;
}

/*
 * policy_line_set - save "VERB<value>\r\n" (or "VERB value\r\n" when angle
 * is 0) as c's line `which`: the line of the dialogue the engine reads.
 * Angle brackets in the value become '_': the engine finds the address
 * between '<' and '>'. Returns 0, or -1 when memory runs out.
 */
static int policy_line_set(struct conn *c, enum conn_line which, const char *verb,
			   const char *value, int angle)
{
	size_t vlen = strlen(value), vl = strlen(verb);
	char *line = malloc(vl + vlen + 3);
	int r;

	if (line == NULL)
		return -1;
	memcpy(line, verb, vl);
	if (angle)
		line[vl++] = '<';
	for (size_t i = 0; i < vlen; i++)
		line[vl + i] = value[i] == '<' || value[i] == '>' ? '_' : value[i];
	vl += vlen;
	if (angle)
		line[vl++] = '>';
	r = conn_line_set(c, which, line, vl);
	free(line);
	return r;
}

/* policy_addr - a bare IPv4 or IPv6 address (no port) into na. */
static int policy_addr(const char *text, struct netaddr *na)
{
	memset(na, 0, sizeof(*na));
	if (inet_pton(AF_INET, text, &na->ss.sin.sin_addr) == 1) {
		na->ss.sin.sin_family = AF_INET;
		na->len = sizeof(na->ss.sin);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &na->ss.sin6.sin6_addr) == 1) {
		na->ss.sin6.sin6_family = AF_INET6;
		na->len = sizeof(na->ss.sin6);
		return 0;
	}
	return -1;
}

static void policy_log_bad(struct policy_sess *s, const char *why, const char *raw, size_t len)
{
	char esc[400];

	log_warn("policy: malformed request (%s), answered DUNNO: \"%s\"", why,
		 log_escape(esc, sizeof(esc), raw, len < 120 ? len : 120));
	policy_answer(s, POLICY_MALFORMED, "DUNNO", NULL);
}

/*
 * policy_request - one parsed request: answer it at once, or hand it to
 * the engine (s->deciding; the answer comes through policy_decided).
 */
static void policy_request(struct policy_sess *s, const struct policy_attrs *a)
{
	struct conn *c = &s->c;
	struct mxg *mxg = s->p->mxg;
	const char *name = a->client_name;

	if (strcmp(a->protocol_state, "RCPT") != 0) {
		policy_answer(s, POLICY_DUNNO, "DUNNO", NULL);
		return;
	}
	if (policy_addr(a->client_address, &c->client) < 0) {
		policy_log_bad(s, "client_address", a->client_address, strlen(a->client_address));
		return;
	}
	/* The engine's HELO check compares with this server's own address. */
	if (policy_addr(a->server_address, &c->local) < 0)
		policy_addr("0.0.0.0", &c->local);
	c->mxg = mxg;
	c->cfg = cfg_ref(mxg->cfg);
	c->lst = NULL;
	c->fd = -1;
	c->action = ACT_INSPECT;
	c->stage = STAGE_DIALOGUE;
	c->pending_verb = SMTP_RCPT;
	c->counted = 0;
	c->verdict = VERDICT_CLEAN;
	gettimeofday(&c->start, NULL);
	if ((a->helo_name[0] != '\0' &&
	     policy_line_set(c, CONN_HELO, "HELO ", a->helo_name, 0) < 0) ||
	    policy_line_set(c, CONN_MAIL, "MAIL FROM:", a->sender, 1) < 0 ||
	    policy_line_set(c, CONN_PENDING, "RCPT TO:", a->recipient, 1) < 0) {
		policy_req_clear(s);
		log_warn("policy: out of memory: answered DUNNO");
		policy_answer(s, POLICY_FAILED, "DUNNO", NULL);
		s->closing = 1;
		return;
	}
	snprintf(s->instance, sizeof(s->instance), "%s", a->instance);
	/* Postfix verified the name (forward and reverse); "unknown" is none. */
	if (name[0] == '\0' || strcmp(name, "unknown") == 0)
		name = NULL;
	s->deciding = 1;
	bufferevent_disable(s->bev, EV_READ);
	s->in_start = 1;
	grey_connect_named(c, name);
	grey_decide(c);
	s->in_start = 0;
	if (s->lost)
		policy_sess_free(s);
}

/* policy_process - answer what the input holds, one request at a time. */
static void policy_process(struct policy_sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (!s->deciding && !s->closing) {
		size_t len = evbuffer_get_length(in),
		       take = len < POLICY_REQ_MAX ? len : POLICY_REQ_MAX, reqlen = 0;
		const char *buf = take ? (const char *)evbuffer_pullup(in, (ev_ssize_t)take) : "";
		struct policy_attrs a;
		enum policy_parse rc;

		switch (policyproto_scan(buf, take, &reqlen)) {
		case POLICY_MORE:
			return;
		case POLICY_TOOBIG:
			/* No way to find where the next request starts: answer, then close. */
			policy_log_bad(s, "over 16 KiB without an end", buf, take);
			s->closing = 1;
			bufferevent_disable(s->bev, EV_READ);
			return;
		case POLICY_DONE:
			break;
		}
		rc = policyproto_parse(buf, reqlen, &a);
		if (rc != POLICY_OK)
			policy_log_bad(s, policyproto_error(rc), buf, reqlen);
		evbuffer_drain(in, reqlen);
		if (rc == POLICY_OK)
			policy_request(s, &a);
	}
}

static void policy_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	policy_process(arg);
}

static void policy_write_cb(struct bufferevent *bev, void *arg)
{
	struct policy_sess *s = arg;

	if (s->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		policy_sess_free(s);
}

/* policy_event_cb - EOF, error or policy_timeout: the connection ends (a decision too). */
static void policy_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	policy_sess_free(arg);
}

static void policy_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *arg)
{
	struct policy *p = arg;
	struct policy_sess *s;
	struct timeval tv = {p->mxg->cfg->policy_timeout, 0};

	(void)evl;
	(void)sa;
	(void)salen;
	if (p->mxg->stopping || p->nsess >= POLICY_MAX_CONNS ||
	    (s = calloc(1, sizeof(*s))) == NULL) {
		/* Postfix applies smtpd_policy_service_default_action (451 4.3.5). */
		if (p->refused++ % 1000 == 0)
			log_warn("policy: %d connections open: refusing more (%llu so far)",
				 p->nsess, (unsigned long long)p->refused);
		close(fd);
		return;
	}
	s->p = p;
	s->c.mxg = p->mxg; /* grey_conn_free finds the engine through it */
	s->c.fd = -1;
	s->bev = bufferevent_socket_new(p->mxg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		return;
	}
	s->next = p->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	p->sessions = s;
	p->nsess++;
	bufferevent_setcb(s->bev, policy_read_cb, policy_write_cb, policy_event_cb, s);
	/* Reading stops at a full request's worth: policy_process then refuses it. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, POLICY_REQ_MAX);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

int policy_start(struct mxg *mxg)
{
	struct policy *p = mxg->policy;

	for (int i = 0; p != NULL && i < p->nlst; i++) {
		p->lst[i].evl = evconnlistener_new(mxg->base, policy_accept_cb, p,
						   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
						   p->lst[i].fd);
		if (p->lst[i].evl == NULL)
			return -1;
		log_info("policy service on %s", p->lst[i].name);
	}
	return 0;
}

void policy_disown(struct mxg *mxg)
{
	if (mxg->policy != NULL)
		mxg->policy->disowned = 1;
}

void policy_close(struct mxg *mxg)
{
	struct policy *p = mxg->policy;

	if (p == NULL)
		return;
	mxg->policy = NULL;
	while (p->sessions != NULL)
		policy_sess_free(p->sessions);
	for (int i = 0; i < p->nlst; i++) {
		if (p->lst[i].evl != NULL)
			evconnlistener_free(p->lst[i].evl);
		else if (p->lst[i].fd >= 0)
			close(p->lst[i].fd);
		if (p->lst[i].is_unix && !p->disowned)
			unlink(p->lst[i].name + 5);
	}
	free(p);
}

/* ---- the engine's answers --------------------------------------------- */

int policy_is_request(const struct conn *c)
{
	return c->lst == NULL && c->fd < 0;
}

/* policy_sess_of - the connection whose request c is (c is its first member). */
static struct policy_sess *policy_sess_of(struct conn *c)
{
	return (struct policy_sess *)(void *)c;
}

/* policy_fail - a store or DNS failure: policy_fail_action, never a reject. */
static void policy_fail(struct policy_sess *s, const char *reply)
{
	if (s->c.cfg->policy_fail_action == POLICY_FAIL_DUNNO) {
		policy_answer(s, POLICY_FAILED, "DUNNO", NULL);
		return;
	}
	/* "451 4.3.0 Temporary local problem...": the text after the code. */
	policy_answer(s, POLICY_FAILED, "DEFER_IF_PERMIT",
		      strlen(reply) > 4 ? reply + 4 : "Temporary local problem, try again later");
}

void policy_decided(struct conn *c, int outcome, const char *reply)
{
	struct policy_sess *s = policy_sess_of(c);
	const struct cfg *cfg = c->cfg;
	char text[300], ip[NETADDR_STRLEN], inst[140];
	switch (outcome) {
	case GREY_PASS:
		if (cfg->policy_prepend && cfg->mode != MODE_WARN &&
		    c->verdict == VERDICT_SUSPECT) {
			snprintf(text, sizeof(text), "X-Greylist: suspect client passed by %s",
				 cfg->myhostname);
			policy_answer(s, POLICY_PREPEND, "PREPEND", text);
		} else {
			policy_answer(s, POLICY_DUNNO, "DUNNO", NULL);
		}
		break;
	case GREY_TARPIT:
		/* The deferral stands in for the hold: recorded as a drop (see the top). */
		c->held_ms = conn_ms(c);
		grey_tarpit_done(c, 0);
		policy_answer(s, POLICY_DEFER, "DEFER_IF_PERMIT", cfg->policy_greylist_text);
		break;
	case GREY_TEMPFAIL:
		if (reply != NULL && strncmp(reply, "450 4.7.1 ", 10) == 0)
			policy_answer(s, POLICY_DEFER, "DEFER_IF_PERMIT",
				      cfg->policy_greylist_text);
		else
			policy_fail(s, reply != NULL ? reply : "");
		break;
	case GREY_REJECT:
		/* The list's own reply, code first: "action=550 5.7.1 ...". */
		if (reply != NULL && (reply[0] == '4' || reply[0] == '5') && reply[1] >= '0' &&
		    reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9' && reply[3] == ' ') {
			char code[4] = {reply[0], reply[1], reply[2], '\0'};

			policy_answer(s, POLICY_REJECT, code, reply + 4);
		} else {
			policy_fail(s, "");
		}
		break;
	default:
		policy_answer(s, POLICY_DUNNO, "DUNNO", NULL);
		break;
	}
	netaddr_ip((const struct sockaddr *)&c->client.ss, ip, sizeof(ip));
	log_info("policy answer client=%s instance=%s action=%s", ip,
		 log_escape(inst, sizeof(inst), s->instance, strlen(s->instance)),
		 policy_action_name(s->last));
	s->deciding = 0;
	policy_req_clear(s);
	if (s->closing) {
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	policy_process(s);
}

void policy_lost(struct conn *c)
{
	struct policy_sess *s = policy_sess_of(c);

	/* Inside policy_request's grey_decide: it frees s when the call returns. */
	if (s->in_start)
		s->lost = 1;
	else
		policy_sess_free(s);
}

/* ---- status ------------------------------------------------------------ */

void policy_counts(const struct policy *p, uint64_t counts[POLICY_NACTIONS], int *conns)
{
	for (int i = 0; i < POLICY_NACTIONS; i++)
		counts[i] = p != NULL ? p->counts[i] : 0;
	*conns = p != NULL ? p->nsess : 0;
}

void policy_status(const struct policy *p, json_t *obj)
{
	json_t *answers;

	if (p == NULL || obj == NULL || (answers = json_object()) == NULL)
		return;
	json_object_set_new(obj, "connections", json_integer(p->nsess));
	json_object_set_new(obj, "refused", json_integer((json_int_t)p->refused));
	for (int i = 0; i < POLICY_NACTIONS; i++)
		json_object_set_new(answers, policy_action_names[i],
				    json_integer((json_int_t)p->counts[i]));
	json_object_set_new(obj, "answers", answers);
}
