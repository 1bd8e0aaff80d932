/*
 * ctl_io.c - how mxguardctl talks (ctl_io.h): the control socket client
 * (finding the socket, naming who may use it when we may not, bounded
 * reads with a timeout so that a daemon that accepts but never answers
 * cannot hang scripts), error reports, and the terminal of the live view.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "ctl_io.h"
#include "ctl_json.h"
#include "mxg_build.h"

#define CTL_ANSWER_MAX (64 << 20) /* a list of millions of records, at most */
#define CTL_TIMEOUT 30		  /* seconds to wait for an answer */

/*
 * The terminal of the live view. Static because a signal may end the view
 * at any point and the terminal must be given back whatever happens:
 * ctl_io_tty_leave is idempotent, and every exit path goes through it:
 * ctl_io_fail calls it, so that an error is printed on the normal screen.
 */
static struct termios ctl_tty_saved;
static int ctl_tty_active;

void ctl_io_tty_leave(void)
{
	if (!ctl_tty_active)
		return;
	ctl_tty_active = 0;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tty_saved);
	/* Cursor back on, leave the alternate screen. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
}

int ctl_io_fail(const struct ctl *ctl, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_io_tty_leave();
	if (ctl != NULL && ctl->json) {
		fputs("{\"ok\":false,\"error\":", stdout);
		ctl_json_string(stdout, msg);
		fputs("}\n", stdout);
		fflush(stdout);
	} else {
		fprintf(stderr, "mxguardctl: %s\n", msg);
	}
	return code;
}

/* ctl_io_config - load the configuration; NULL after an error was reported. */
struct cfg *ctl_io_config(const struct ctl *ctl, const char *path)
{
	char err[1024];
	struct cfg *cfg =
	    cfg_load(path ? path : MXG_DEFAULT_CONFIG, path == NULL, NULL, 0, err, sizeof(err));

	if (cfg == NULL)
		ctl_io_fail(ctl, CTL_EFAIL, "%s", err);
	return cfg;
}

/*
 * ctl_socket - find the control socket: -s, else the configuration's
 * control_socket. Returns 0, or an exit code after reporting.
 */
static int ctl_socket(struct ctl *ctl)
{
	char sock[1024];

	if (ctl->sock != NULL) {
		snprintf(sock, sizeof(sock), "%s", ctl->sock);
	} else {
		struct cfg *cfg = ctl_io_config(ctl, ctl->config);

		if (cfg == NULL)
			return CTL_EFAIL;
		cfg_control_path(cfg, sock, sizeof(sock));
		cfg_unref(&cfg);
	}
	if (strlen(sock) >= sizeof(ctl->path))
		return ctl_io_fail(ctl, CTL_EFAIL, "control socket path too long: %s", sock);
	memcpy(ctl->path, sock, strlen(sock) + 1);
	return CTL_OK;
}

/*
 * ctl_denied - connect() said EACCES: name who may use the socket, from
 * its owner, group and mode, or the directory that stops us.
 */
static int ctl_denied(const struct ctl *ctl)
{
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char user[64], group[64];

	if (stat(ctl->path, &st) < 0)
		return ctl_io_fail(ctl, CTL_EPERM,
				   "permission denied: cannot reach the control socket %s (%s): a "
				   "directory on its path is closed to uid %ld; run mxguardctl as "
				   "root or as the run_as user of mxguard",
				   ctl->path, strerror(errno), (long)geteuid());
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	if (pw != NULL)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%ld", (long)st.st_uid);
	if (gr != NULL)
		snprintf(group, sizeof(group), "%s", gr->gr_name);
	else
		snprintf(group, sizeof(group), "%ld", (long)st.st_gid);
	return ctl_io_fail(ctl, CTL_EPERM,
			   "permission denied on the control socket %s (owner %s, group %s, mode "
			   "%04o): run mxguardctl as root, as user %s%s%s",
			   ctl->path, user, group, (unsigned)(st.st_mode & 07777), user,
			   st.st_mode & S_IWGRP ? " or as a member of group " : "",
			   st.st_mode & S_IWGRP ? group : "");
}

/*
 * ctl_io_call - send one request line, read the one-line answer into
 * *answer_r (the caller frees it). Returns 0, or an exit code after
 * reporting (3: not reachable, 4: permission).
 */
int ctl_io_call(struct ctl *ctl, const char *line, char **answer_r)
{
	struct sockaddr_un sun;
	struct timeval tv = {CTL_TIMEOUT, 0};
	char buf[8192], *answer = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	*answer_r = NULL;
	if (ctl->path[0] == '\0' && (rc = ctl_socket(ctl)) != CTL_OK)
		return rc;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, ctl->path, strlen(ctl->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return ctl_io_fail(ctl, CTL_EFAIL, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM)
			return ctl_denied(ctl);
		return ctl_io_fail(ctl, CTL_EDOWN,
				   "cannot reach mxguard at %s: %s%s (name another socket with -s "
				   "SOCKET, or the daemon's configuration with -c FILE)",
				   ctl->path, strerror(e),
				   e == ENOENT || e == ECONNREFUSED ? ": is it running?" : "");
	}
	/* A daemon that accepts but never answers must not hang scripts. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(buf, sizeof(buf), "%s\n", line);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
		rc = ctl_io_fail(ctl, CTL_EDOWN, "cannot send to mxguard at %s: %s", ctl->path,
				 strerror(errno));
		close(fd);
		return rc;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *grown;

		if (len + (size_t)n > CTL_ANSWER_MAX) {
			free(answer);
			close(fd);
			return ctl_io_fail(ctl, CTL_EFAIL,
					   "answer from mxguard larger than %d bytes",
					   CTL_ANSWER_MAX);
		}
		if ((grown = realloc(answer, len + (size_t)n + 1)) == NULL) {
			free(answer);
			close(fd);
			return ctl_io_fail(ctl, CTL_EFAIL, "out of memory");
		}
		answer = grown;
		memcpy(answer + len, buf, (size_t)n);
		len += (size_t)n;
		answer[len] = '\0';
	}
	rc = errno;
	close(fd);
	if (n < 0 || answer == NULL) {
		free(answer);
		return ctl_io_fail(ctl, CTL_EDOWN, "no answer from mxguard at %s%s%s", ctl->path,
				   n < 0 ? ": " : "", n < 0 ? strerror(rc) : "");
	}
	*answer_r = answer;
	return CTL_OK;
}

/*
 * ctl_io_parse - the answer as a tree; a daemon error ("ok":false) is
 * reported and becomes exit code 1. Returns 0 with *v_r set, or an exit
 * code (the answer is freed either way).
 */
int ctl_io_parse(const struct ctl *ctl, char *answer, struct jv **v_r)
{
	struct jv *v = ctl_json_parse(answer, strlen(answer));
	const struct jv *ok = ctl_json_get(v, "ok");

	*v_r = NULL;
	free(answer);
	if (v == NULL || v->type != J_OBJ)
		return ctl_json_free(v),
		       ctl_io_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s",
				   ctl->path);
	if (ok != NULL && ok->type == J_BOOL && !ok->num) {
		int rc = ctl_io_fail(ctl, CTL_EFAIL, "%s", ctl_json_str(v, "error"));

		ctl_json_free(v);
		return rc;
	}
	*v_r = v;
	return CTL_OK;
}

/*
 * ctl_io_action - commands whose answer is printed as it comes: add, del,
 * flush, reload, ping, notify-test. The JSON line goes to stdout (scripts
 * read it; earlier versions printed it), and a refusal also to stderr in
 * words, unless --json asked for JSON only.
 */
int ctl_io_action(struct ctl *ctl, const char *line)
{
	char *answer;
	struct jv *v;
	int rc = ctl_io_call(ctl, line, &answer);

	if (rc != CTL_OK)
		return rc;
	/* Checked before it is printed: --json output always parses. */
	if ((v = ctl_json_parse(answer, strlen(answer))) == NULL || v->type != J_OBJ) {
		ctl_json_free(v);
		free(answer);
		return ctl_io_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s",
				   ctl->path);
	}
	fputs(answer, stdout);
	if (answer[0] != '\0' && answer[strlen(answer) - 1] != '\n')
		putchar('\n');
	fflush(stdout);
	free(answer);
	if (ctl_json_get(v, "ok") != NULL && !ctl_json_num(v, "ok")) {
		if (!ctl->json)
			fprintf(stderr, "mxguardctl: %s\n", ctl_json_str(v, "error"));
		rc = CTL_EFAIL;
	}
	ctl_json_free(v);
	return rc;
}

int ctl_io_tty_enter(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &ctl_tty_saved) < 0)
		return -1;
	raw = ctl_tty_saved;
	/* Keys one at a time, not echoed; ISIG stays: Ctrl-C is SIGINT. */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
		return -1;
	ctl_tty_active = 1;
	/* The alternate screen, cursor hidden. */
	fputs("\033[?1049h\033[?25l", stdout);
	fflush(stdout);
	return 0;
}
