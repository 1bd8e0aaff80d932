/*
 * notify_cmd.c - notify_command's helper process.
 *
 * The command runs without a shell: notify_command is split on white
 * space, and the data travels in MXG_* environment variables, so nothing a
 * client controls is ever parsed by a shell. stdin is /dev/null; stdout
 * and stderr are the daemon's. It is not started by the network process,
 * which may not exec (sandbox.c), but by a helper process forked at start
 * (see "The command helper" below), which kills a command after
 * NOTIFY_CMD_TIMEOUT seconds and logs how it ended. The network process
 * watches SIGCHLD with waitpid(helper, WNOHANG) on the helper only:
 * another module may have children of its own, and waitpid(-1) would
 * steal their status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "notify.h"
#include "notify_cmd.h"
#include "sandbox.h"
#include "strbuf.h"

#define NOTIFY_CHILDREN_MAX 16 /* commands running at once */
#define NOTIFY_CMD_TIMEOUT 30  /* seconds a command may run */
#define NOTIFY_ARGS_MAX 32     /* words in notify_command */

struct notify_cmd {
	int fd;	   /* our end of the helper's socket; -1: none */
	pid_t pid; /* 0: gone */
	struct event *sigchld;
};

/*
 * The command helper. The network process runs under a seccomp filter
 * that forbids execve, so it never starts a program itself: at start-up
 * (before the filter) notify_new forks this small process, which keeps
 * nothing but one end of a SOCK_SEQPACKET socketpair and stdin, stdout
 * and stderr. Each notice arrives as one message, the command's words and
 * environment already built by the network process:
 *
 *	uint32 kind, uint32 argc, uint32 envc, then argc + envc strings,
 *	each ending in NUL.
 *
 * The helper checks the framing (it trusts its parent, but a bad message
 * must not make it run garbage), spawns the command as before, kills it
 * after NOTIFY_CMD_TIMEOUT and logs how it ended. It exits when the
 * network process closes its end (or dies: PR_SET_PDEATHSIG). Commands
 * still running are left to finish, as before.
 */

#define NOTIFY_MSG_MAX (192 * 1024) /* one notice: body, data values, argv */

struct cmd_child {
	pid_t pid; /* 0: free slot */
	int kind;
	time_t deadline;
	int killed;
};

/* cmd_env_name - "MXG_" and name with anything outside [A-Z0-9_] as '_'. */
static void cmd_env_name(struct strbuf *sb, const char *name)
{
	strbuf_str(sb, "MXG_");
	for (size_t i = 0; name[i] != '\0' && i < 32; i++) {
		char c = name[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		strbuf_add(sb, &c, 1);
	}
	strbuf_add(sb, "=", 1);
}

/*
 * cmd_spawn - start argv with envp: stdin from /dev/null, stdout and
 * stderr shared, no other descriptor, default signal dispositions (SIGPIPE
 * is ignored in the helper, and ignoring survives execve), an empty signal
 * mask, a process group of its own. posix_spawn: a failed execve comes
 * back here as an error number instead of an anonymous exit status.
 * Returns 0 with *pid set, or an errno value.
 */
static int cmd_spawn(char *const *argv, char *const *envp, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGCHLD);
	if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						      POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&attr, &dfl)) == 0)
		rc = posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* cmd_run - one message from the network process: check it, run it. */
static void cmd_run(struct cmd_child *kids, char *msg, size_t len)
{
	char *argv[NOTIFY_ARGS_MAX + 1], *envp[NOTIFY_KV_MAX + 8];
	uint32_t hdr[3];
	char *p = msg + sizeof(hdr), *end = msg + len;
	struct cmd_child *slot = NULL;
	const char *kind;
	pid_t pid;
	int rc;

	if (len < sizeof(hdr)) {
		log_warn("notify_command helper: short message (%zu bytes) ignored", len);
		return;
	}
	memcpy(hdr, msg, sizeof(hdr));
	if (hdr[0] >= NOTIFY_NKINDS || hdr[1] < 1 || hdr[1] > NOTIFY_ARGS_MAX ||
	    hdr[2] > NOTIFY_KV_MAX + 7) {
		log_warn("notify_command helper: bad message header ignored");
		return;
	}
	kind = notify_kind_name((enum notify_kind)hdr[0]);
	for (uint32_t i = 0; i < hdr[1] + hdr[2]; i++) {
		char *nul = memchr(p, '\0', (size_t)(end - p));

		if (p >= end || nul == NULL) {
			log_warn("notify_command helper: truncated message ignored");
			return;
		}
		if (i < hdr[1])
			argv[i] = p;
		else
			envp[i - hdr[1]] = p;
		p = nul + 1;
	}
	argv[hdr[1]] = NULL;
	envp[hdr[2]] = NULL;
	for (int i = 0; i < NOTIFY_CHILDREN_MAX && slot == NULL; i++)
		if (kids[i].pid == 0)
			slot = &kids[i];
	if (slot == NULL) {
		log_warn("notify_command for %s not run: %d commands still running", kind,
			 NOTIFY_CHILDREN_MAX);
		return;
	}
	if ((rc = cmd_spawn(argv, envp, &pid)) != 0) {
		log_warn("notify_command for %s: cannot run %.200s: %s", kind, argv[0],
			 strerror(rc));
		return;
	}
	slot->pid = pid;
	slot->kind = (int)hdr[0];
	slot->deadline = time(NULL) + NOTIFY_CMD_TIMEOUT;
	slot->killed = 0;
}

/* cmd_reap - collect ended commands and kill overdue ones; returns how many still run. */
static int cmd_reap(struct cmd_child *kids)
{
	time_t now = time(NULL);
	int running = 0;

	for (int i = 0; i < NOTIFY_CHILDREN_MAX; i++) {
		struct cmd_child *c = &kids[i];
		const char *kind = notify_kind_name((enum notify_kind)c->kind);
		int status;
		pid_t pid;

		if (c->pid == 0)
			continue;
		while ((pid = waitpid(c->pid, &status, WNOHANG)) < 0 && errno == EINTR)
			;
		if (pid == 0) {
			if (!c->killed && now >= c->deadline) {
				log_warn("notify_command for %s still running after %ds: killed "
					 "(pid %ld)",
					 kind, NOTIFY_CMD_TIMEOUT, (long)c->pid);
				c->killed = 1;
				/* The whole process group: a script's own children go with it. */
				kill(-c->pid, SIGKILL);
				kill(c->pid, SIGKILL);
			}
			running++;
			continue;
		}
		if (pid < 0)
			log_warn_errno("notify_command for %s: waitpid %ld", kind, (long)c->pid);
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warn("notify_command for %s exited with status %d%s", kind,
				 WEXITSTATUS(status),
				 WEXITSTATUS(status) == 127 ? " (a missing interpreter?)" : "");
		else if (WIFSIGNALED(status) && !c->killed)
			log_warn("notify_command for %s killed by signal %d", kind,
				 WTERMSIG(status));
		c->pid = 0;
	}
	return running;
}

/* cmd_helper - the helper process's whole life. Never returns. */
static void cmd_helper(int sock, pid_t parent) __attribute__((noreturn));

static void cmd_helper(int sock, pid_t parent)
{
	struct cmd_child kids[NOTIFY_CHILDREN_MAX];
	char *buf;

	sandbox_child_signals();
	(void)prctl(PR_SET_NAME, "mxguard-notify", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != parent)
		_exit(0);
	/* Only the socket (as 3) and stdin/stdout/stderr: the commands share the last two. */
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			_exit(1);
		sock = 3;
	}
	if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (int fd = 4; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			(void)close(fd);
	}
	if ((buf = malloc(NOTIFY_MSG_MAX)) == NULL)
		_exit(1);
	memset(kids, 0, sizeof(kids));
	for (;;) {
		struct pollfd pfd = {sock, POLLIN, 0};
		struct iovec iov = {buf, NOTIFY_MSG_MAX};
		struct msghdr mh;
		/* Commands running: wake each second to reap them and enforce the timeout. */
		int rc = poll(&pfd, 1, cmd_reap(kids) > 0 ? 1000 : -1);
		ssize_t len;

		if (rc < 0 && errno != EINTR)
			_exit(1);
		if (rc <= 0)
			continue;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		len = recvmsg(sock, &mh, 0);
		if (len < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (len <= 0)
			_exit(0); /* the network process is gone, or stopping */
		if (mh.msg_flags & MSG_TRUNC)
			log_warn("notify_command helper: message over %d bytes ignored",
				 NOTIFY_MSG_MAX);
		else
			cmd_run(kids, buf, (size_t)len);
	}
}

/*
 * notify_cmd_fork - fork the helper; the parent keeps its end of the
 * socket (non-blocking). Returns 0, or -1 with the reason logged.
 */
static int notify_cmd_fork(struct notify_cmd *h)
{
	int sv[2], sndbuf = 2 * NOTIFY_MSG_MAX;
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn_errno("notify_command helper: socketpair");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn_errno("notify_command helper: fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		cmd_helper(sv[1], parent);
	}
	close(sv[1]);
	/* A notice is one message: room for the largest (the kernel caps it). */
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	(void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	h->fd = sv[0];
	h->pid = pid;
	return 0;
}

/* notify_cmd_reap - on SIGCHLD: has our helper died? Never blocks, never waits for others. */
static void notify_cmd_reap(evutil_socket_t sig, short what, void *arg)
{
	struct notify_cmd *h = arg;
	int status;
	pid_t pid;

	if (h->pid <= 0)
		return;
	while ((pid = waitpid(h->pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (pid == 0)
		return;
	log_warn("notify_command helper (pid %ld) has %s: notify_command will not run until a "
		 "restart",
		 (long)h->pid, pid > 0 && WIFSIGNALED(status) ? "been killed" : "exited");
	h->pid = 0;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}

void notify_cmd_send(struct notify_cmd *h, const char *command, const char *host,
		     enum notify_kind kind, const char *subject, const char *body, unsigned held,
		     const struct notify_kv *kv, int nkv)
{
	char cmd[2048], *argv[NOTIFY_ARGS_MAX + 1];
	struct strbuf env[NOTIFY_KV_MAX + 7], msg = {0};
	int nenv = 0, argc;
	uint32_t hdr[3];

	if (command[0] == '\0')
		return;
	if (snprintf(cmd, sizeof(cmd), "%s", command) >= (int)sizeof(cmd)) {
		log_warn("notify_command is too long; not run");
		return;
	}
	/* White space only: the words are passed as they are, quotes and all. */
	argc = 0;
	for (char *save = NULL, *w = strtok_r(cmd, " \t", &save);
	     w != NULL && argc < NOTIFY_ARGS_MAX; w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	if (argc == 0)
		return;
	if (argv[0][0] != '/') {
		log_warn("notify_command: '%.200s' is not an absolute path; not run", argv[0]);
		return;
	}
	if (h->fd < 0) {
		log_warn("notify_command for %s not run: no command helper",
			 notify_kind_name(kind));
		return;
	}
	memset(env, 0, sizeof(env));
	strbuf_printf(&env[nenv++], "MXG_EVENT=%s", notify_kind_name(kind));
	strbuf_str(&env[nenv], "MXG_SUBJECT=");
	strbuf_add(&env[nenv], subject, strnlen(subject, NOTIFY_VALUE_MAX));
	nenv++;
	strbuf_printf(&env[nenv++], "MXG_HOST=%s", host);
	strbuf_printf(&env[nenv++], "MXG_HELD=%u", held);
	strbuf_str(&env[nenv], "MXG_BODY=");
	strbuf_add(&env[nenv], body, strnlen(body, NOTIFY_BODY_MAX));
	nenv++;
	strbuf_str(&env[nenv++], "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	for (int i = 0; i < nkv; i++) {
		cmd_env_name(&env[nenv], kv[i].name);
		strbuf_add(&env[nenv], kv[i].value, strnlen(kv[i].value, NOTIFY_VALUE_MAX));
		nenv++;
	}
	hdr[0] = (uint32_t)kind;
	hdr[1] = (uint32_t)argc;
	hdr[2] = (uint32_t)nenv;
	strbuf_add(&msg, (const char *)hdr, sizeof(hdr));
	for (int i = 0; i < argc; i++)
		strbuf_add(&msg, argv[i], strlen(argv[i]) + 1);
	for (int i = 0; i < nenv; i++) {
		/* An environment string holds no NUL: the value was cut at the first. */
		if (env[i].s != NULL)
			strbuf_add(&msg, env[i].s, env[i].len + 1);
		msg.oom |= env[i].oom || env[i].s == NULL;
	}
	if (msg.oom)
		log_warn("notify_command for %s not run: out of memory", notify_kind_name(kind));
	else if (msg.len > NOTIFY_MSG_MAX)
		log_warn("notify_command for %s not run: notice of %zu bytes is over %d",
			 notify_kind_name(kind), msg.len, NOTIFY_MSG_MAX);
	else if (send(h->fd, msg.s, msg.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn_errno("notify_command for %s not run: passing it to the helper",
			       notify_kind_name(kind));
	for (int i = 0; i < nenv; i++)
		free(env[i].s);
	free(msg.s);
}

struct notify_cmd *notify_cmd_start(struct event_base *base)
{
	struct notify_cmd *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->fd = -1;
	h->sigchld = evsignal_new(base, SIGCHLD, notify_cmd_reap, h);
	if (h->sigchld == NULL || evsignal_add(h->sigchld, NULL) < 0 || notify_cmd_fork(h) < 0) {
		if (h->sigchld != NULL)
			event_free(h->sigchld);
		free(h);
		return NULL;
	}
	return h;
}

void notify_cmd_stop(struct notify_cmd **hp)
{
	struct notify_cmd *h = *hp;

	*hp = NULL;
	if (h == NULL)
		return;
	/* The helper exits on EOF; commands still running are left to finish. */
	if (h->fd >= 0)
		close(h->fd);
	event_free(h->sigchld);
	free(h);
}
