/*
 * sandbox.c - confinement of the network process: seccomp and Landlock.
 *
 * The network process reads bytes from the whole Internet. If one of its
 * parsers is ever turned into code execution, the attacker should find a
 * process that can do little more than the loop already does: serve
 * sockets, talk to the backend, DNS and Redis, use its state directory.
 *
 * seccomp (libseccomp): an allow-list of the system calls the loop makes,
 * found by tracing the whole integration suite (strace -f -c) and
 * reviewed by hand. Anything else fails with EPERM: a rarely used path
 * that was missed (a library's fallback, a new glibc) then logs an error
 * and the daemon goes on handling mail, where a kill would take the
 * service down for every client. On x86-64 and arm64 the denial goes
 * through a SIGSYS handler that logs the call's number once, so a missing
 * entry shows in the log instead of as a mysterious EPERM. The exceptions are calls no code path of
 * mxguard or its libraries makes once started, whose only use here is an
 * attacker's (execve, ptrace, mount, module loading, namespaces, bpf...):
 * those kill the whole process, and systemd starts a clean one. mmap and
 * mprotect with PROT_EXEC fail too: nothing is loaded after the start.
 * socket() is limited to the families the daemon uses (AF_INET, AF_INET6,
 * AF_UNIX, AF_NETLINK), and bind() and listen() are not allowed at all:
 * every listener is opened at start, so code running in the process
 * cannot open a port of its own.
 *
 * Landlock (raw system calls, Linux 5.13+): every filesystem right the
 * kernel knows is handled, so only the rules below allow anything:
 *   - read: the directory of the configuration file and of every file a
 *     list parameter names at start (client_lists, helo_lists,
 *     recipient_whitelist, allow_clients, block_clients, geo_database,
 *     service blocks), read again on reload; /proc (kstat, synwatch);
 *     the resolver's and the time zone's files; /dev/urandom;
 *   - read and write, never execute: state_dir and the control socket's
 *     directory.
 * A list moved on reload to a directory not known at start cannot be
 * opened ("Permission denied" in the reload error): a restart picks it up.
 * A kernel without Landlock (ENOSYS, EOPNOTSUPP) is logged once and the
 * start goes on: seccomp still holds.
 *
 * Sanitizer builds (ASan) are not confined: LeakSanitizer stops the
 * threads at exit with ptrace from a clone()d task and reads /proc, and
 * ASan runs llvm-symbolizer for its reports. Widening the list for them
 * would test a different filter than the one shipped, so the start logs
 * why nothing is applied instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "config.h"
#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif
#ifndef SANDBOX_ASAN
#define SANDBOX_ASAN 0
#endif

#define SANDBOX_PATH_MAX 1024

/* The loop's system calls (names: libseccomp resolves them per architecture). */
static const char *const sandbox_allowed[] = {
    /* descriptors and sockets */
    "read",
    "readv",
    "pread64",
    "preadv",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "close",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "connect",
    "accept",
    "accept4",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "shutdown",
    "fcntl",
    "dup",
    "dup3",
    "pipe2",
    "eventfd2",
    "signalfd4",
    /* the event loop, signals, time */
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "rt_sigreturn",
    "rt_sigprocmask",
    "rt_sigaction",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
    "futex",
    "restart_syscall",
    /* memory: malloc and LMDB's map (PROT_EXEC filtered below) */
    "brk",
    "munmap",
    "mremap",
    "madvise",
    "msync",
    /* files: LMDB, lists and config on reload, /proc counters */
    "openat",
    "newfstatat",
    "fstat",
    "statx",
    "lseek",
    "fsync",
    "fdatasync",
    "flock",
    "ftruncate",
    "getdents64",
    "unlink",
    "unlinkat",
    "fadvise64",
    /* the rest of the loop's life */
    "getrandom",
    "getpid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getppid",
    "uname",
    "sysinfo",
    "prlimit64",
    "sched_yield",
    "sched_getaffinity",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "exit",
    "exit_group",
};

/* Calls only an attacker's code would make: the whole process dies. */
static const char *const sandbox_killed[] = {
    "execve",	       "execveat",    "ptrace",	      "process_vm_readv", "process_vm_writev",
    "mount",	       "umount2",     "pivot_root",   "chroot",		  "setns",
    "unshare",	       "init_module", "finit_module", "delete_module",	  "kexec_load",
    "kexec_file_load", "bpf",	      "userfaultfd",  "perf_event_open",  "open_by_handle_at",
    "fsopen",	       "fsmount",     "move_mount",   "open_tree",	  "keyctl",
    "add_key",	       "request_key",
};

static const int sandbox_families[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK};

/*
 * Where the architecture lets a SIGSYS handler set a system call's return
 * value, a denied call is trapped instead of failing silently: the
 * handler says which call it was (once per call number) and makes it
 * return EPERM, so a call missing from the list shows in the log.
 */
#if defined(__x86_64__) || defined(__aarch64__)
#define SANDBOX_TRAP 1
#else
#define SANDBOX_TRAP 0
#endif

#if SANDBOX_TRAP
static unsigned char sandbox_seen[1024 / 8];

/* sandbox_sigsys - log a denied call once and make it fail with EPERM (async-signal-safe). */
static void sandbox_sigsys(int sig, siginfo_t *si, void *arg)
{
	ucontext_t *uc = arg;
	int nr = si->si_syscall, saved = errno;
	char msg[128] = "mxguard: warning: seccomp: system call ", num[16];
	size_t len = strlen(msg), n = 0;
	unsigned v = (unsigned)nr;

	if (nr >= 0 && nr < 1024 && !(sandbox_seen[nr / 8] & (1u << (nr % 8)))) {
		sandbox_seen[nr / 8] |= (unsigned char)(1u << (nr % 8));
		do
			num[n++] = (char)('0' + v % 10);
		while ((v /= 10) != 0 && n < sizeof(num));
		while (n > 0)
			msg[len++] = num[--n];
		memcpy(msg + len, " denied (EPERM)\n", 16);
		(void)!write(2, msg, len + 16);
	}
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#else
	uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
	errno = saved;
}
#endif

/* sandbox_rule - add one rule for name; a call this architecture lacks is skipped. */
static int sandbox_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
			const struct scmp_arg_cmp *args, char *err, size_t errsz)
{
	int nr = seccomp_syscall_resolve_name(name), rc;

	if (nr == __NR_SCMP_ERROR)
		return 0;
	if ((rc = seccomp_rule_add_array(ctx, action, nr, n, args)) < 0) {
		snprintf(err, errsz, "seccomp: rule for %s: %s", name, strerror(-rc));
		return -1;
	}
	return 0;
}

/* sandbox_seccomp - build and load the filter. Returns 0 or -1 with err set. */
static int sandbox_seccomp(char *err, size_t errsz)
{
	scmp_filter_ctx ctx;
	struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	struct scmp_arg_cmp fionread = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
	int rc = -1;

#if SANDBOX_TRAP
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	ctx =
	    seccomp_init(sigaction(SIGSYS, &sa, NULL) == 0 ? SCMP_ACT_TRAP : SCMP_ACT_ERRNO(EPERM));
#else
	ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
#endif
	if (ctx == NULL) {
		snprintf(err, errsz, "seccomp: cannot create the filter");
		return -1;
	}
	for (size_t i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]); i++)
		if (sandbox_rule(ctx, SCMP_ACT_ALLOW, sandbox_allowed[i], 0, NULL, err, errsz) < 0)
			goto out;
	for (size_t i = 0; i < sizeof(sandbox_killed) / sizeof(sandbox_killed[0]); i++)
		if (sandbox_rule(ctx, SCMP_ACT_KILL_PROCESS, sandbox_killed[i], 0, NULL, err,
				 errsz) < 0)
			goto out;
	/* Memory yes, new code no (nothing is loaded once started). */
	if (sandbox_rule(ctx, SCMP_ACT_ALLOW, "mmap", 1, &noexec, err, errsz) < 0 ||
	    sandbox_rule(ctx, SCMP_ACT_ALLOW, "mprotect", 1, &noexec, err, errsz) < 0)
		goto out;
	/* libevent and c-ares ask how much is waiting; no other ioctl. */
	if (sandbox_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &fionread, err, errsz) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(sandbox_families) / sizeof(sandbox_families[0]); i++) {
		struct scmp_arg_cmp fam = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_families[i]);

		if (sandbox_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &fam, err, errsz) < 0)
			goto out;
	}
	if ((rc = seccomp_load(ctx)) < 0)
		snprintf(err, errsz, "seccomp: cannot load the filter: %s", strerror(-rc));
	rc = rc < 0 ? -1 : 0;
out:
	seccomp_release(ctx);
	return rc;
}

/* ---------------------------------------------------------------- Landlock */

#define LL_FILE_RIGHTS                                                                             \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE)
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

struct ll {
	int fd;		  /* the ruleset */
	uint64_t handled; /* every right this kernel's ABI knows */
	uint64_t file;	  /* of those, the ones a rule on a file may carry */
	int nrules;
};

/* ll_abi_rights - what the kernel's Landlock ABI version can handle. */
static void ll_abi_rights(int abi, uint64_t *handled, uint64_t *file)
{
	*handled = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0-12 */
	*file = LL_FILE_RIGHTS;
	if (abi >= 2)
		*handled |= LANDLOCK_ACCESS_FS_REFER;
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3) {
		*handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
		*file |= LANDLOCK_ACCESS_FS_TRUNCATE;
	}
#endif
#ifdef LANDLOCK_ACCESS_FS_IOCTL_DEV
	if (abi >= 5) {
		*handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
		*file |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	}
#endif
}

/*
 * ll_allow - rights beneath path (or on the file path). A path that does
 * not exist is skipped: an optional resolver file, a list not yet there.
 */
static void ll_allow(struct ll *ll, const char *path, uint64_t rights)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return;
	}
	pb.parent_fd = fd;
	pb.allowed_access = rights & ll->handled & (S_ISDIR(st.st_mode) ? ~0ULL : ll->file);
	if (pb.allowed_access != 0 &&
	    syscall(SYS_landlock_add_rule, ll->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == 0)
		ll->nrules++;
	else if (pb.allowed_access != 0)
		log_warn_errno("landlock: rule for %s", path);
	close(fd);
}

/* ll_allow_dir_of - read access beneath the directory that holds path. */
static void ll_allow_dir_of(struct ll *ll, const char *path, size_t len)
{
	char buf[SANDBOX_PATH_MAX];
	char *slash;

	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, path, len);
	buf[len] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		snprintf(buf, sizeof(buf), ".");
	else if (slash == buf)
		buf[1] = '\0';
	else
		*slash = '\0';
	ll_allow(ll, buf, LL_READ);
}

/*
 * ll_allow_lists - the directories of the files a list parameter names.
 * The words are "type:PATH", "PATH" or addresses; a word that names no
 * existing directory's entry (an address, a CIDR) adds nothing.
 */
static void ll_allow_lists(struct ll *ll, const char *value)
{
	const char *seps = " \t\r\n,;=";

	if (value == NULL)
		return;
	while (*value != '\0') {
		size_t len;
		const char *w, *colon;

		value += strspn(value, seps);
		len = strcspn(value, seps);
		if (len == 0)
			break;
		w = value;
		value += len;
		/* regexp:/etc/x, cidr:lists/y: the path follows the first colon. */
		colon = memchr(w, ':', len);
		if (colon != NULL && colon[1] != ':' && colon + 1 < w + len) {
			len -= (size_t)(colon + 1 - w);
			w = colon + 1;
		}
		if (memchr(w, '/', len) != NULL)
			ll_allow_dir_of(ll, w, len);
	}
}

/*
 * sandbox_landlock - restrict the filesystem. Returns 1 when enforced, 0
 * when the kernel has no Landlock (logged), -1 on an error (logged).
 */
static int sandbox_landlock(const struct cfg *cfg, const char *cfg_path)
{
	static const char *const system_ro[] = {
	    "/proc",	      "/dev/urandom",	     "/etc/resolv.conf", "/etc/hosts",
	    "/etc/host.conf", "/etc/nsswitch.conf",  "/etc/gai.conf",	 "/etc/services",
	    "/etc/localtime", "/usr/share/zoneinfo", "/etc/ssl/certs",
	};
	struct landlock_ruleset_attr attr;
	struct ll ll = {-1, 0, 0, 0};
	char ctl[SANDBOX_PATH_MAX];
	int abi;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		if (errno == ENOSYS || errno == EOPNOTSUPP) {
			log_info("landlock: not supported by this kernel (%s); filesystem not "
				 "restricted",
				 strerror(errno));
			return 0;
		}
		log_warn_errno("landlock: cannot ask for the ABI version");
		return -1;
	}
	ll_abi_rights(abi, &ll.handled, &ll.file);
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = ll.handled;
	ll.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ll.fd < 0) {
		log_warn_errno("landlock: cannot create the ruleset");
		return -1;
	}
	if (cfg_path != NULL)
		ll_allow_dir_of(&ll, cfg_path, strlen(cfg_path));
	ll_allow_lists(&ll, cfg->client_lists);
	ll_allow_lists(&ll, cfg->helo_lists);
	ll_allow_lists(&ll, cfg->recipient_whitelist);
	ll_allow_lists(&ll, cfg->allow_clients);
	ll_allow_lists(&ll, cfg->block_clients);
	ll_allow_lists(&ll, cfg->geo_database);
	for (int i = 0; i < CFG_MAX_SERVICES; i++)
		ll_allow_lists(&ll, cfg->services[i].text);
	for (size_t i = 0; i < sizeof(system_ro) / sizeof(system_ro[0]); i++)
		ll_allow(&ll, system_ro[i], LL_READ);
	/* Everything but execute: LMDB files, the control socket's unlink at stop. */
	ll_allow(&ll, cfg->state_dir, ll.handled & ~(uint64_t)LANDLOCK_ACCESS_FS_EXECUTE);
	cfg_control_path(cfg, ctl, sizeof(ctl));
	if (strchr(ctl, '/') != NULL) {
		*strrchr(ctl, '/') = '\0';
		ll_allow(&ll, ctl[0] ? ctl : "/",
			 ll.handled & ~(uint64_t)LANDLOCK_ACCESS_FS_EXECUTE);
	}
	if (syscall(SYS_landlock_restrict_self, ll.fd, 0) < 0) {
		log_warn_errno("landlock: cannot enforce the ruleset");
		close(ll.fd);
		return -1;
	}
	close(ll.fd);
	log_info("landlock: ABI %d, %d paths allowed; the rest of the filesystem is closed", abi,
		 ll.nrules);
	return 1;
}

void sandbox_enter(const struct cfg *cfg, const char *cfg_path)
{
	char err[256];

	if (!cfg->seccomp) {
		log_warn("seccomp = no: the network process is not confined");
		return;
	}
	if (SANDBOX_ASAN) {
		/* Not the sanitizer's name: the tests take that for a report. */
		log_info("seccomp and landlock skipped: an ASan build, whose leak check at "
			 "exit needs ptrace, clone and /proc");
		return;
	}
	/* Landlock and the filter both need it; set once, explicitly. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_fatal("cannot set no_new_privs: %s", strerror(errno));
	if (cfg_path != NULL && access(cfg_path, F_OK) < 0)
		cfg_path = NULL;
	(void)sandbox_landlock(cfg, cfg_path);
	if (sandbox_seccomp(err, sizeof(err)) < 0)
		log_fatal("%s (set seccomp = no to run without the filter)", err);
	log_info("seccomp: filter loaded (%zu system calls allowed)",
		 sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]) + 4);
}

void sandbox_child_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		(void)sigaction(s, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}
