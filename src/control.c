/*
 * control.c - the control socket.
 *
 * Local clients only (a unix socket, mode 0660): permission is the file's.
 * Requests are single lines of at most CONTROL_LINE_MAX bytes; a client
 * that sends more, or nothing for CONTROL_TIMEOUT seconds, is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "control.h"
#include "grey.h"
#include "log.h"
#include "mxguard.h"
#include "store.h"

#define CONTROL_LINE_MAX 1024
#define CONTROL_TIMEOUT 10

struct control {
	struct mxg *mxg;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct evconnlistener *evl;
};

static void control_status(struct control *ctl, struct evbuffer *out)
{
	struct mxg *mxg = ctl->mxg;
	int by_stage[STAGE_TARPIT + 1] = {0};

	for (struct conn *c = mxg->conns; c != NULL; c = c->next)
		if (c->stage <= STAGE_TARPIT)
			by_stage[c->stage]++;
	evbuffer_add_printf(out,
			    "{\"pid\":%ld,\"uptime\":%ld,\"stopping\":%s,\"connections\":%d,"
			    "\"accepted\":%llu,\"refused\":%llu,\"passed\":%llu,"
			    "\"backend_fail\":%llu,\"stages\":{",
			    (long)getpid(), (long)(time(NULL) - mxg->started),
			    mxg->stopping ? "true" : "false", mxg->nconns,
			    (unsigned long long)mxg->stats.accepted,
			    (unsigned long long)mxg->stats.refused,
			    (unsigned long long)mxg->stats.passed,
			    (unsigned long long)mxg->stats.backend_fail);
	for (int s = 0; s <= STAGE_TARPIT; s++)
		evbuffer_add_printf(out, "%s\"%s\":%d", s ? "," : "", conn_stage_name(s),
				    by_stage[s]);
	evbuffer_add_printf(out, "}");
	if (mxg->engine != NULL) {
		char eng[1024];

		grey_status(mxg->engine, eng, sizeof(eng));
		evbuffer_add_printf(out, ",\"engine\":{%s}", eng);
	}
	evbuffer_add_printf(out, "}\n");
}

/* control_json - s as the body of a JSON string (quotes not included). */
static void control_json(struct evbuffer *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			evbuffer_add_printf(out, "\\u%04x", c);
		else
			evbuffer_add(out, s, 1);
	}
}

static void control_error(struct evbuffer *out, const char *msg)
{
	evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"");
	control_json(out, msg);
	evbuffer_add_printf(out, "\"}\n");
}

struct control_walk {
	struct evbuffer *out;
	int n;
};

static int control_list_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct control_walk *w = arg;

	evbuffer_add_printf(w->out, "%s{\"key\":\"", w->n++ ? "," : "");
	control_json(w->out, key);
	evbuffer_add_printf(w->out, "\",\"first\":%lld,\"last\":%lld,\"expires\":%lld,\"count\":%u}",
			    (long long)rec->first, (long long)rec->last, (long long)rec->expires,
			    rec->count);
	return 0;
}

/* control_records - "list KIND", "add white ENTRY", "del KIND KEY". */
static void control_records(struct control *ctl, char *line, struct evbuffer *out)
{
	struct engine *e = ctl->mxg->engine;
	char *save = NULL, *verb = strtok_r(line, " ", &save);
	char *kind_s = strtok_r(NULL, " ", &save), *key = strtok_r(NULL, "", &save);
	int kind = kind_s ? store_kind_parse(kind_s) : -1;
	char err[256];

	if (e == NULL) {
		control_error(out, "no store");
		return;
	}
	if (kind < 0) {
		control_error(out, "expected a record kind: tarpit, grey, awl or white");
		return;
	}
	if (strcmp(verb, "list") == 0 && key == NULL) {
		struct control_walk w = {out, 0};

		evbuffer_add_printf(out, "{\"ok\":true,\"kind\":\"%s\",\"records\":[", kind_s);
		if (store_list(grey_store(e), kind, control_list_cb, &w) < 0) {
			evbuffer_drain(out, evbuffer_get_length(out));
			control_error(out, "store error");
			return;
		}
		evbuffer_add_printf(out, "]}\n");
	} else if (strcmp(verb, "add") == 0 && key != NULL) {
		if (kind != STORE_WHITE)
			control_error(out, "only white entries are added by hand");
		else if (grey_white_add(e, key, err, sizeof(err)) < 0)
			control_error(out, err);
		else
			evbuffer_add_printf(out, "{\"ok\":true}\n");
	} else if (strcmp(verb, "del") == 0 && key != NULL) {
		int rc = kind == STORE_WHITE ? grey_white_del(e, key)
					     : store_del(grey_store(e), kind, key);

		if (rc < 0)
			control_error(out, "store error");
		else if (rc == 0)
			control_error(out, "no such record");
		else
			evbuffer_add_printf(out, "{\"ok\":true}\n");
	} else {
		control_error(out, "usage: list KIND | add white ENTRY | del KIND KEY");
	}
}

static void control_request(struct control *ctl, char *line, struct evbuffer *out)
{
	char err[512];

	if (strncmp(line, "list ", 5) == 0 || strncmp(line, "add ", 4) == 0 ||
	    strncmp(line, "del ", 4) == 0) {
		control_records(ctl, line, out);
	} else if (strcmp(line, "status") == 0) {
		control_status(ctl, out);
	} else if (strcmp(line, "ping") == 0) {
		evbuffer_add_printf(out, "{\"ok\":true}\n");
	} else if (strcmp(line, "reload") == 0) {
		if (mxg_reload(ctl->mxg, err, sizeof(err)) == 0)
			evbuffer_add_printf(out, "{\"ok\":true}\n");
		else
			control_error(out, err);
	} else {
		snprintf(err, sizeof(err), "unknown command: %.200s", line);
		control_error(out, err);
	}
}

static void control_done_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev);
}

static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void control_read_cb(struct bufferevent *bev, void *arg)
{
	struct control *ctl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	if (strlen(line) > CONTROL_LINE_MAX) {
		free(line);
		bufferevent_free(bev);
		return;
	}
	control_request(ctl, line, bufferevent_get_output(bev));
	free(line);
	/* One request per connection: close once the answer is out. */
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, control_done_cb, control_event_cb, ctl);
}

static void control_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			      int salen, void *arg)
{
	struct control *ctl = arg;
	struct bufferevent *bev =
		bufferevent_socket_new(ctl->mxg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = {CONTROL_TIMEOUT, 0};

	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, control_read_cb, NULL, control_event_cb, ctl);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct control *control_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun;
	char path[1024];

	if (ctl == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	ctl->mxg = mxg;
	cfg_control_path(mxg->cfg, path, sizeof(path));
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "control_socket: path too long: %s", path);
		free(ctl);
		return NULL;
	}
	memcpy(ctl->path, path, strlen(path) + 1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		snprintf(err, errsz, "control_socket: socket: %s", strerror(errno));
		free(ctl);
		return NULL;
	}
	unlink(path);
	if (bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(ctl->fd, 16) < 0 ||
	    chmod(path, 0660) < 0 || chown(path, uid, gid) < 0) {
		snprintf(err, errsz, "control_socket %s: %s", path, strerror(errno));
		close(ctl->fd);
		free(ctl);
		return NULL;
	}
	return ctl;
}

int control_start(struct control *ctl)
{
	ctl->evl = evconnlistener_new(ctl->mxg->base, control_accept_cb, ctl,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, ctl->fd);
	return ctl->evl != NULL ? 0 : -1;
}

void control_close(struct control **ctlp)
{
	struct control *ctl = *ctlp;

	*ctlp = NULL;
	if (ctl == NULL)
		return;
	if (ctl->evl != NULL)
		evconnlistener_free(ctl->evl);
	else
		close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}
