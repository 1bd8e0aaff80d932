/*
 * fw_nft.c - kernel-level blocking with nftables (firewall = nftables).
 *
 * Two halves joined by a SOCK_SEQPACKET socketpair:
 *
 * - The network process (fw_start, fw_block, fw_unblock, fw_poll, fw_stop)
 *   only ever writes small fixed records (struct fw_req) with MSG_DONTWAIT:
 *   a full queue costs a lost request, never a stalled event loop. It reads
 *   back short text reports (start result, batch failures) and notices the
 *   helper's death as end-of-file on the socket.
 *
 * - The helper, forked by fw_start while still root, is privilege-separated
 *   in the OpenBSD manner: it closes every other descriptor, switches to
 *   run_as while keeping only CAP_NET_ADMIN (permitted and effective; the
 *   bounding set is cut to it too), sets no_new_privs and a parent-death
 *   signal, and then does nothing but turn records into nft commands through
 *   one libnftables context.
 *
 * Batching: the helper blocks for the first record, then takes everything
 * else already queued (up to FW_BATCH_MAX) and applies it as ONE
 * nft_run_cmd_from_buffer call, which libnftables sends as one netlink
 * transaction. Within a batch only the last request per address matters, so
 * records are sorted and reduced to a final state per address first.
 *
 * Absent elements: nftables 1.0.6 has no "destroy element", and a "delete
 * element" of an element that is not there (never blocked, or expired
 * already) fails the whole transaction. Rather than ask the kernel first
 * (racy: elements expire by themselves) the batch uses the same idiom as
 * "add table; delete table": for every address touched it first adds the
 * bare element (a no-op when present), then deletes it (now it is always
 * present), then adds the blocked ones back with their timeout. This also
 * makes a repeated block refresh the timeout on kernels where adding an
 * existing element leaves it alone (before Linux 6.11 or so).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <nftables/libnftables.h>
#include <sys/capability.h>

#include "fw.h"
#include "log.h"
#include "sandbox.h"
#include "strbuf.h"

#define FW_OP_BLOCK 1
#define FW_OP_UNBLOCK 2

/* One request, parent to helper. Fixed size: a record is one datagram. */
struct fw_req {
	uint8_t op;	/* FW_OP_* */
	uint8_t family; /* 4 or 6 */
	uint8_t plen;	/* 0: one address (set blockN), else a network (set netN) */
	uint8_t pad;
	uint32_t seconds; /* block only */
	uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes */
};

/* Reports, helper to parent: one type byte, then text. */
#define FW_MSG_READY 'R'
#define FW_MSG_FATAL 'E' /* start failed; the helper exits */
#define FW_MSG_WARN 'W'	 /* a batch failed; the helper goes on */
#define FW_MSG_MAX 512

#define FW_NAME_MAX 64		       /* table name length we accept */
#define FW_PORTS_MAX 512	       /* guarded ports (main.c offers up to 272) */
#define FW_BATCH_MAX 8192	       /* records per transaction */
#define FW_MAX_SECONDS (366L * 86400L) /* longest block we pass on */
#define FW_START_TIMEOUT_MS 10000      /* wait for the helper's first answer */
#define FW_STOP_TIMEOUT_MS 2000	       /* wait for the helper to exit */
/*
 * The queue between the processes. Each queued record costs about 384
 * bytes of kernel memory (skb overhead), so the default 208 KB buffer holds
 * about 550 records: too few for a burst of blocks during an attack. As
 * root we can force a larger one; 8 MB holds about 21,000 records (measured
 * with the helper stopped), memory that is only used while it lags.
 */
#define FW_SNDBUF (8 * 1024 * 1024)

struct fw {
	int fd;		     /* our end of the socketpair, -1 after death */
	pid_t pid;	     /* helper, 0 once reaped */
	int behind;	     /* in a run of lost requests: logged already */
	unsigned long lost;  /* requests that never reached the helper */
	unsigned long burst; /* lost in the current run */
	char table[FW_NAME_MAX + 1];
};

/* ---------------------------------------------------------------- */
/* Helper side. Nothing here may log: its descriptors are gone.      */
/* ---------------------------------------------------------------- */

/* fw_send_msg - helper: one report to the parent; best effort. */
static void fw_send_msg(int fd, char type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fw_send_msg(int fd, char type, const char *fmt, ...)
{
	char buf[FW_MSG_MAX];
	va_list ap;
	int n;

	buf[0] = type;
	va_start(ap, fmt);
	n = vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	(void)send(fd, buf, (size_t)n + 1, MSG_NOSIGNAL);
}

/*
 * fw_nft_reason - the first line of libnftables' error buffer without its
 * "Error: " and "Could not process rule: " prefixes, which say nothing to an
 * operator ("Operation not permitted" is the useful part).
 */
static void fw_nft_reason(struct nft_ctx *nft, char *out, size_t outsz)
{
	const char *e = nft_ctx_get_error_buffer(nft);
	const char *p, *nl;
	size_t len;

	if (e == NULL || *e == '\0')
		e = "unknown error";
	/* Skip location lines such as "<cmdline>:1:1-5: " if present. */
	p = strstr(e, "Error: ");
	p = p != NULL ? p + 7 : e;
	if (strncmp(p, "Could not process rule: ", 24) == 0)
		p += 24;
	nl = strchr(p, '\n');
	len = nl != NULL ? (size_t)(nl - p) : strlen(p);
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

/* A request in a batch, with its arrival order so the last one wins. */
struct fw_item {
	struct fw_req r;
	uint32_t seq;
};

static int fw_item_cmp(const void *a, const void *b)
{
	const struct fw_item *x = a, *y = b;
	int c;

	if (x->r.family != y->r.family)
		return x->r.family < y->r.family ? -1 : 1;
	if (x->r.plen != y->r.plen)
		return x->r.plen < y->r.plen ? -1 : 1;
	if ((c = memcmp(x->r.addr, y->r.addr, 16)) != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* fw_item_in - is item in the set of family and kind (net: the networks' set)? */
static int fw_item_in(const struct fw_item *it, int family, int net)
{
	return it->r.family == family && (it->r.plen != 0) == net;
}

/*
 * fw_batch_family - append the commands for one set (family, and net:
 * networks or addresses) to b. items is sorted; only the last item of
 * each run of one address (and prefix length) counts. Networks go to an
 * interval set of their own: an interval set refuses an element that
 * overlaps another, and an address blocked on its own lies inside the
 * network blocked after it.
 */
static int fw_batch_family(struct strbuf *b, const char *table, const struct fw_item *it, int n,
			   int family, int net)
{
	const char *set = net ? (family == 4 ? "net4" : "net6") : family == 4 ? "block4" : "block6";
	int af = family == 4 ? AF_INET : AF_INET6;
	char a[INET6_ADDRSTRLEN + 4];
	int touched = 0, blocked = 0;
	/* Three passes over the same final states: add, delete, add again. */
	for (int pass = 0; pass < 3; pass++) {
		int first = 1;

		for (int i = 0; i < n; i++) {
			if (!fw_item_in(&it[i], family, net))
				continue;
			if (i + 1 < n && fw_item_in(&it[i + 1], family, net) &&
			    it[i + 1].r.plen == it[i].r.plen &&
			    memcmp(it[i + 1].r.addr, it[i].r.addr, 16) == 0)
				continue; /* a later request for this address wins */
			if (pass == 2 && it[i].r.op != FW_OP_BLOCK)
				continue;
			if (pass == 0) {
				touched++;
				blocked += it[i].r.op == FW_OP_BLOCK;
			}
			if (first && strbuf_printf(b, "%s element inet %s %s { ",
						   pass == 1 ? "delete" : "add", table, set) < 0)
				return -1;
			inet_ntop(af, it[i].r.addr, a, sizeof(a));
			if (net) {
				size_t al = strlen(a);

				snprintf(a + al, sizeof(a) - al, "/%u", (unsigned)it[i].r.plen);
			}
			if (pass == 2) {
				if (strbuf_printf(b, "%s%s timeout %lus", first ? "" : ", ", a,
						  (unsigned long)it[i].r.seconds) < 0)
					return -1;
			} else if (strbuf_printf(b, "%s%s", first ? "" : ", ", a) < 0) {
				return -1;
			}
			first = 0;
		}
		if (!first && strbuf_printf(b, " }\n") < 0)
			return -1;
		if (pass == 0 && touched == 0)
			break;
		if (pass == 1 && blocked == 0)
			break;
	}
	return 0;
}

/*
 * fw_helper_batch - wait for requests, take all that are queued, apply
 * them in one transaction. Returns 0, or -1 when the parent is gone.
 */
static int fw_helper_batch(int fd, struct nft_ctx *nft, const char *table, struct fw_item *items)
{
	int n = 0, bad = 0;
	ssize_t r;

	while (n < FW_BATCH_MAX) {
		r = recv(fd, &items[n].r, sizeof(items[n].r), n == 0 ? 0 : MSG_DONTWAIT);
		if (r == 0)
			return -1; /* the parent closed its end */
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		/* The parent is trusted, but a bad record must not become a bad command. */
		if (r != (ssize_t)sizeof(struct fw_req) ||
		    (items[n].r.op != FW_OP_BLOCK && items[n].r.op != FW_OP_UNBLOCK) ||
		    (items[n].r.family != 4 && items[n].r.family != 6) ||
		    items[n].r.plen > (items[n].r.family == 4 ? 31 : 127) ||
		    (items[n].r.op == FW_OP_BLOCK &&
		     (items[n].r.seconds < 1 || items[n].r.seconds > FW_MAX_SECONDS))) {
			bad++;
			continue;
		}
		items[n].seq = (uint32_t)n;
		n++;
	}
	if (bad)
		fw_send_msg(fd, FW_MSG_WARN, "%d malformed requests ignored", bad);
	if (n == 0)
		return 0;
	qsort(items, (size_t)n, sizeof(items[0]), fw_item_cmp);

	struct strbuf b = STRBUF_INIT;

	if (fw_batch_family(&b, table, items, n, 4, 0) < 0 ||
	    fw_batch_family(&b, table, items, n, 6, 0) < 0 ||
	    fw_batch_family(&b, table, items, n, 4, 1) < 0 ||
	    fw_batch_family(&b, table, items, n, 6, 1) < 0) {
		strbuf_free(&b);
		fw_send_msg(fd, FW_MSG_WARN, "%d requests lost: out of memory", n);
		return 0;
	}
	if (b.len > 0 && nft_run_cmd_from_buffer(nft, b.s) != 0) {
		char why[256];

		fw_nft_reason(nft, why, sizeof(why));
		fw_send_msg(fd, FW_MSG_WARN, "%d requests failed in table inet %s: %s", n, table,
			    why);
	}
	strbuf_free(&b);
	return 0;
}

/*
 * fw_helper_privs - keep only CAP_NET_ADMIN, as run_as when switch_user.
 * Returns 0, or -1 with a reason in why.
 */
static int fw_helper_privs(int switch_user, uid_t uid, gid_t gid, const char *user, char *why,
			   size_t whysz)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t have_admin = CAP_CLEAR, have_setpcap = CAP_CLEAR;

	if (caps == NULL) {
		snprintf(why, whysz, "cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	cap_get_flag(caps, CAP_NET_ADMIN, CAP_PERMITTED, &have_admin);
	cap_get_flag(caps, CAP_SETPCAP, CAP_EFFECTIVE, &have_setpcap);
	cap_free(caps);

	/*
	 * Cut the bounding set while CAP_SETPCAP is still there, so that even
	 * a later exec could never gain more than CAP_NET_ADMIN. Without
	 * CAP_SETPCAP (started unprivileged) there is nothing to cut from.
	 */
	if (have_setpcap == CAP_SET) {
		for (int c = 0; c <= (int)cap_max_bits() - 1; c++)
			if (c != CAP_NET_ADMIN && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 &&
			    errno != EINVAL) {
				snprintf(why, whysz, "cannot limit the bounding set: %s",
					 strerror(errno));
				return -1;
			}
	}
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

	if (switch_user) {
		/* KEEPCAPS: setuid away from 0 would otherwise clear the permitted set. */
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(1, &gid) < 0 ||
		    setgid(gid) < 0 || setuid(uid) < 0) {
			snprintf(why, whysz, "cannot switch to user %s: %s", user, strerror(errno));
			return -1;
		}
		(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}

	/*
	 * Keep CAP_NET_ADMIN only if we had it: asking for it otherwise fails
	 * with a less helpful message than the one nft gives when the table
	 * cannot be created.
	 */
	caps = cap_init();
	if (caps == NULL) {
		snprintf(why, whysz, "cannot set capabilities: %s", strerror(errno));
		return -1;
	}
	if (have_admin == CAP_SET) {
		cap_value_t v = CAP_NET_ADMIN;

		cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET);
		cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET);
	}
	if (cap_set_proc(caps) < 0) {
		snprintf(why, whysz, "cannot limit capabilities to CAP_NET_ADMIN: %s",
			 strerror(errno));
		cap_free(caps);
		return -1;
	}
	cap_free(caps);
	if (switch_user && uid != 0 && setuid(0) == 0) {
		snprintf(why, whysz, "root could be regained after switching to %s", user);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(why, whysz, "cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* fw_helper_fds - keep only the socket (as fd 3) and /dev/null on 0-2. */
static int fw_helper_fds(int sock)
{
	int null;

	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			return -1;
		sock = 3;
	}
	/* dup2 clears FD_CLOEXEC on the copy; no exec follows anyway. */
	if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (int fd = 4; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			(void)close(fd);
	}
	/* libnftables may print to stdout/stderr: they must lead nowhere harmful. */
	null = open("/dev/null", O_RDWR);
	if (null < 0)
		return -1;
	for (int fd = 0; fd <= 2; fd++)
		if (fd != null && dup2(null, fd) < 0)
			return -1;
	if (null > 2)
		(void)close(null);
	return sock;
}

/* fw_helper - the helper process's whole life. Never returns. */
static void fw_helper(int sock, pid_t parent, const char *table, const uint16_t *ports, int nports,
		      int switch_user, uid_t uid, gid_t gid, const char *user)
{
	char why[FW_MSG_MAX - 64];
	struct nft_ctx *nft;
	struct strbuf b = STRBUF_INIT;
	struct fw_item *items;
	int fd;

	sandbox_child_signals();

	fd = fw_helper_fds(sock);
	if (fd < 0)
		_exit(1); /* nothing to report through: the parent sees EOF */
	if (fw_helper_privs(switch_user, uid, gid, user, why, sizeof(why)) < 0) {
		fw_send_msg(fd, FW_MSG_FATAL, "firewall = nftables: %s", why);
		_exit(1);
	}
	/* After the user switch: changing credentials clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != parent)
		_exit(1);

	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	items = malloc(FW_BATCH_MAX * sizeof(*items));
	if (nft == NULL || items == NULL) {
		fw_send_msg(fd, FW_MSG_FATAL, "firewall = nftables: cannot create a context");
		_exit(1);
	}
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);

	/*
	 * One transaction: "add; delete" removes an old table of this name
	 * whether it exists or not (nftables 1.0.6 has no "destroy"), then the
	 * new one is defined with empty sets.
	 */
	int ok =
	    strbuf_printf(&b,
			  "add table inet %s\ndelete table inet %s\ntable inet %s {\n"
			  "set block4 { type ipv4_addr; flags timeout; }\n"
			  "set block6 { type ipv6_addr; flags timeout; }\n"
			  "set net4 { type ipv4_addr; flags interval, timeout; }\n"
			  "set net6 { type ipv6_addr; flags interval, timeout; }\n"
			  "chain input {\ntype filter hook input priority -10; policy accept;\n",
			  table, table, table) == 0;
	/* Four rules: addresses and networks (net4, net6), for each family. */
	for (int rule = 0; ok && rule < 4; rule++) {
		int ip = rule % 2 ? 6 : 4;

		ok = strbuf_printf(&b, "tcp dport { ") == 0;
		for (int i = 0; ok && i < nports; i++) {
			int seen = 0; /* several listeners may share a port */

			for (int k = 0; k < i && !seen; k++)
				seen = ports[k] == ports[i];
			if (!seen)
				ok = strbuf_printf(&b, "%s%u", i ? ", " : "", (unsigned)ports[i]) ==
				     0;
		}
		if (ok)
			ok = strbuf_printf(&b, " } %s saddr @%s%d drop\n", ip == 4 ? "ip" : "ip6",
					   rule < 2 ? "block" : "net", ip) == 0;
	}
	if (ok)
		ok = strbuf_printf(&b, "}\n}\n") == 0;
	if (!ok) {
		fw_send_msg(fd, FW_MSG_FATAL, "firewall = nftables: out of memory");
		_exit(1);
	}
	if (nft_run_cmd_from_buffer(nft, b.s) != 0) {
		fw_nft_reason(nft, why, sizeof(why));
		fw_send_msg(fd, FW_MSG_FATAL,
			    "firewall = nftables: cannot create table inet %s: %s%s", table, why,
			    strstr(why, "not permitted") != NULL ? " (mxguard needs CAP_NET_ADMIN)"
								 : "");
		_exit(1);
	}
	strbuf_free(&b);
	fw_send_msg(fd, FW_MSG_READY, "ok");

	while (fw_helper_batch(fd, nft, table, items) == 0)
		;
	nft_ctx_free(nft);
	_exit(0);
}

/* ---------------------------------------------------------------- */
/* Network process side.                                             */
/* ---------------------------------------------------------------- */

/* fw_reap - collect the helper if it has exited; wait up to ms for it. */
static void fw_reap(struct fw *fw, int ms, int kill_after)
{
	int status;

	for (int waited = 0; fw->pid > 0;) {
		pid_t r = waitpid(fw->pid, &status, WNOHANG);

		if (r == fw->pid || (r < 0 && errno != EINTR)) {
			fw->pid = 0; /* exited, or reaped by someone else (ECHILD) */
			break;
		}
		if (waited >= ms) {
			if (!kill_after)
				break;
			(void)kill(fw->pid, SIGKILL);
			(void)waitpid(fw->pid, &status, 0);
			fw->pid = 0;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
		waited += 10;
	}
}

/* fw_dead - the helper is gone: say so once; later requests are lost. */
static void fw_dead(struct fw *fw)
{
	log_warn("firewall: the nftables helper for table inet %s has died: kernel blocks are no"
		 " longer added or removed (restart mxguard)",
		 fw->table);
	(void)close(fw->fd);
	fw->fd = -1;
	fw_reap(fw, 0, 0);
}

/* fw_start - see fw.h. */
struct fw *fw_start(const char *table, const uint16_t *ports, int nports, const char *run_as,
		    char *err, size_t errsz)
{
	struct passwd *pw = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	int sv[2], n;
	char msg[FW_MSG_MAX + 1];
	struct fw *fw;
	pid_t parent = getpid(), pid;

	if (table == NULL ||
	    !((table[0] >= 'a' && table[0] <= 'z') || (table[0] >= 'A' && table[0] <= 'Z'))) {
		snprintf(err, errsz, "firewall_table: a name must start with a letter");
		return NULL;
	}
	/* The name goes into nft commands: allow nothing that could change their meaning. */
	n = (int)strlen(table);
	if (n > FW_NAME_MAX || (int)strspn(table, "abcdefghijklmnopqrstuvwxyz"
						  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n) {
		snprintf(err, errsz,
			 "firewall_table: use at most %d letters, digits and underscores",
			 FW_NAME_MAX);
		return NULL;
	}
	if (nports < 1 || nports > FW_PORTS_MAX) {
		snprintf(err, errsz, "firewall = nftables: between 1 and %d ports to guard, not %d",
			 FW_PORTS_MAX, nports);
		return NULL;
	}
	for (int i = 0; i < nports; i++)
		if (ports[i] == 0) {
			snprintf(err, errsz, "firewall = nftables: port 0 cannot be guarded");
			return NULL;
		}
	if (run_as != NULL && run_as[0] != '\0') {
		pw = getpwnam(run_as);
		if (pw == NULL) {
			snprintf(err, errsz, "firewall = nftables: no such user '%s'", run_as);
			return NULL;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	fw = calloc(1, sizeof(*fw));
	if (fw == NULL) {
		snprintf(err, errsz, "firewall = nftables: out of memory");
		return NULL;
	}
	memcpy(fw->table, table, (size_t)n + 1);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errsz, "firewall = nftables: socketpair: %s", strerror(errno));
		free(fw);
		return NULL;
	}
	int sz = FW_SNDBUF;

	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));

	pid = fork();
	if (pid < 0) {
		snprintf(err, errsz, "firewall = nftables: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(fw);
		return NULL;
	}
	if (pid == 0) {
		/* Switch only when it changes something: also lets an unprivileged caller run. */
		int sw = pw != NULL && (getuid() != uid || geteuid() != uid || getgid() != gid);

		fw_helper(sv[1], parent, table, ports, nports, sw, uid, gid, run_as);
	}
	close(sv[1]);
	fw->fd = sv[0];
	fw->pid = pid;

	/* The first answer says whether the table exists: wait for it, bounded. */
	struct pollfd pfd = {fw->fd, POLLIN, 0};

	do
		n = poll(&pfd, 1, FW_START_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		snprintf(err, errsz, "firewall = nftables: the helper did not answer within %d s",
			 FW_START_TIMEOUT_MS / 1000);
		goto fail;
	}
	ssize_t r = recv(fw->fd, msg, sizeof(msg) - 1, 0);

	if (r <= 0) {
		snprintf(err, errsz, "firewall = nftables: the helper exited without an answer");
		goto fail;
	}
	msg[r] = '\0';
	if (msg[0] != FW_MSG_READY) {
		snprintf(err, errsz, "%s", msg + 1);
		goto fail;
	}
	return fw;

fail:
	close(fw->fd);
	fw->fd = -1;
	fw_reap(fw, FW_STOP_TIMEOUT_MS, 1);
	free(fw);
	return NULL;
}

/* fw_fd - see fw.h. */
int fw_fd(const struct fw *fw)
{
	return fw->fd;
}

/* fw_poll - see fw.h. */
void fw_poll(struct fw *fw)
{
	char msg[FW_MSG_MAX + 1], esc[FW_MSG_MAX * 4 + 4];

	while (fw->fd >= 0) {
		ssize_t r = recv(fw->fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);

		if (r == 0 ||
		    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			fw_dead(fw);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		/* nft echoes our own commands only, but escape anyway: it is text from elsewhere.
		 */
		log_warn("firewall: %s", log_escape(esc, sizeof(esc), msg + 1, (size_t)r - 1));
	}
}

/* fw_send - hand one record over without ever waiting. */
static int fw_send(struct fw *fw, const struct fw_req *q)
{
	ssize_t r;

	fw_poll(fw);
	if (fw->fd < 0) {
		fw->lost++;
		return -1;
	}
	do
		r = send(fw->fd, q, sizeof(*q), MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof(*q)) {
		if (fw->behind) {
			log_info("firewall: the nftables helper caught up; %lu requests were lost",
				 fw->burst);
			fw->behind = 0;
			fw->burst = 0;
		}
		return 0;
	}
	fw->lost++;
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
		fw_dead(fw); /* EPIPE, ECONNRESET: the helper is gone */
		return -1;
	}
	fw->burst++;
	if (!fw->behind) {
		log_warn("firewall: the nftables helper is behind: block requests are being lost");
		fw->behind = 1;
	}
	return -1;
}

/* fw_req_addr - fill in family and address; mapped IPv4 counts as IPv4. */
static int fw_req_addr(struct fw_req *q, const struct sockaddr *sa)
{
	memset(q, 0, sizeof(*q));
	if (sa->sa_family == AF_INET) {
		q->family = 4;
		memcpy(q->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			q->family = 4;
			memcpy(q->addr, a6->s6_addr + 12, 4);
		} else {
			q->family = 6;
			memcpy(q->addr, a6->s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

/* fw_block - see fw.h. */
int fw_block(struct fw *fw, const struct sockaddr *sa, uint32_t seconds)
{
	return fw_block_net(fw, sa, 0, seconds);
}

/* fw_req_plen - a network's prefix length into q: 0 or the full length is one address. */
static int fw_req_plen(struct fw_req *q, int plen)
{
	int full = q->family == 4 ? 32 : 128;

	if (plen < 0 || plen > full)
		return -1;
	q->plen = plen == full ? 0 : (uint8_t)plen;
	return 0;
}

/* fw_block_net - see fw.h. */
int fw_block_net(struct fw *fw, const struct sockaddr *sa, int plen, uint32_t seconds)
{
	struct fw_req q;

	if (fw_req_addr(&q, sa) < 0 || seconds < 1 || fw_req_plen(&q, plen) < 0)
		return -1;
	q.op = FW_OP_BLOCK;
	q.seconds = seconds > FW_MAX_SECONDS ? (uint32_t)FW_MAX_SECONDS : seconds;
	return fw_send(fw, &q);
}

/* fw_unblock - see fw.h. */
int fw_unblock(struct fw *fw, const struct sockaddr *sa)
{
	return fw_unblock_net(fw, sa, 0);
}

/* fw_unblock_net - see fw.h. */
int fw_unblock_net(struct fw *fw, const struct sockaddr *sa, int plen)
{
	struct fw_req q;

	if (fw_req_addr(&q, sa) < 0 || fw_req_plen(&q, plen) < 0)
		return -1;
	q.op = FW_OP_UNBLOCK;
	return fw_send(fw, &q);
}

/* fw_lost - see fw.h. */
unsigned long fw_lost(const struct fw *fw)
{
	return fw->lost;
}

/* fw_stop - see fw.h. */
void fw_stop(struct fw **fwp)
{
	struct fw *fw = *fwp;

	if (fw == NULL)
		return;
	*fwp = NULL;
	if (fw->fd >= 0) {
		fw_poll(fw); /* last reports first */
		if (fw->fd >= 0)
			close(fw->fd);
	}
	/* EOF makes the helper finish its batch and exit; the table stays. */
	fw_reap(fw, FW_STOP_TIMEOUT_MS, 1);
	free(fw);
}
