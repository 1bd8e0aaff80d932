/*
 * test_sandbox.c - what the confinement of the network process denies.
 *
 * Each case runs in a forked child that calls sandbox_enter() as the
 * daemon does and then tries something: a call outside the allow-list
 * (bind, listen) must fail with EPERM and the process go on, execve must
 * kill the process with SIGSYS, a file outside the Landlock rules must not
 * open (when the kernel has Landlock) while state_dir stays writable, and
 * seccomp = no must leave all of it possible. Exit 77 (skipped) in an ASan
 * build, which sandbox.c deliberately leaves unconfined.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static char state_dir[] = "/tmp/mxg-sandbox-XXXXXX";
static char outside_dir[] = "/tmp/mxg-outside-XXXXXX";

static struct cfg *load(const char *seccomp)
{
	char err[512], sd[128], sc[64];
	char *ov[] = {sd, sc};
	struct cfg *cfg;

	snprintf(sd, sizeof(sd), "state_dir=%s", state_dir);
	snprintf(sc, sizeof(sc), "seccomp=%s", seccomp);
	cfg = cfg_load("/nonexistent/mxguard.conf", 1, ov, 2, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "cfg_load: %s\n", err);
		exit(2);
	}
	return cfg;
}

/* run - fork, enter the sandbox with seccomp, run fn; the child's wait status. */
static int run(const char *seccomp, int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		sandbox_enter(load(seccomp), NULL);
		_exit(fn());
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

/* 0: bind and listen both failed with EPERM and the process went on. */
static int try_bind(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), bad = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return 10;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EPERM)
		bad |= 1;
	if (listen(fd, 1) == 0 || errno != EPERM)
		bad |= 2;
	return bad;
}

static int try_exec(void)
{
	static char name[] = "true";
	char *argv[] = {name, NULL}, *envp[] = {NULL};

	execve("/bin/true", argv, envp);
	return 20; /* execve failed without killing us */
}

/* 0: the outside file does not open, a state_dir file does. 30: no Landlock. */
static int try_files(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/list", outside_dir);
	fd = open(path, O_RDONLY);
	if (fd >= 0)
		return 1;
	if (errno != EACCES)
		return 2;
	snprintf(path, sizeof(path), "%s/store.test", state_dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return 3;
	close(fd);
	return 0;
}

int main(void)
{
	char path[256];
	int st, fd;

#ifdef TEST_ASAN
	printf("sandbox: skipped: an ASan build is not confined (see sandbox.c)\n");
	return 77;
#endif
	log_init("test_sandbox", LOG_TO_STDERR);
	if (mkdtemp(state_dir) == NULL || mkdtemp(outside_dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/list", outside_dir);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0644)) < 0 || close(fd) < 0) {
		perror(path);
		return 2;
	}

	st = run("yes", try_bind);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bind/listen under the filter: status %#x",
	      st);
	st = run("yes", try_exec);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "execve under the filter: status %#x", st);
	st = run("yes", try_files);
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) < 0)
		printf("sandbox: landlock case skipped: the kernel has no Landlock (%s)\n",
		       strerror(errno));
	else
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "files under landlock: status %#x",
		      st);

	/* seccomp = no: the same calls work (the cases above fail for the filter's sake). */
	st = run("no", try_bind);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "bind/listen without the filter: %#x", st);
	st = run("no", try_exec);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "execve without the filter: status %#x", st);
	st = run("no", try_files);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "files without landlock: status %#x", st);

	unlink(path);
	rmdir(outside_dir);
	snprintf(path, sizeof(path), "%s/store.test", state_dir);
	unlink(path);
	rmdir(state_dir);
	return check_done("sandbox");
}
