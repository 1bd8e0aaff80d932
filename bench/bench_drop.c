/*
 * bench_drop.c - the two programs bench/drop needs: a bare accept()+close()
 * server (the baseline: the least any server can do with a connection it
 * does not want) and a load client that opens connections as fast as it
 * can and counts how many were accepted and closed by the other side.
 *
 *   bench_drop server PORT          accept and close (RST) until killed
 *   bench_drop server PORT LINE     accept, send LINE and CRLF without
 *                                   waiting (MSG_DONTWAIT), close (FIN):
 *                                   the least an SMTP refusal must do
 *   bench_drop client PORT SECONDS CONCURRENCY SRC...
 *                                   prints "connections N seconds S rate R"
 *
 * The client keeps CONCURRENCY non-blocking connects in flight, spread
 * over the given source addresses (loopback: each has its own 28k
 * ephemeral ports), and counts one connection when the server has closed
 * it (EOF or reset). Its own sockets close with a reset too, so neither
 * side keeps TIME_WAIT entries. Bounded by SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_rst(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int bench_server(int port, const char *line)
{
	struct sockaddr_in sin;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	char reply[512];
	size_t len = 0;

	if (line != NULL) {
		int n = snprintf(reply, sizeof(reply), "%s\r\n", line);

		if (n < 0 || (size_t)n >= sizeof(reply)) {
			fprintf(stderr, "bench_drop server: line too long\n");
			return 1;
		}
		len = (size_t)n;
	}

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4096) < 0) {
		perror("bench_drop server");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				return 1;
		} else if (line != NULL) {
			/* As mxguard refuses on its SMTP listener: one line, no waiting, FIN. */
			(void)send(c, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(c);
		} else {
			bench_rst(c);
		}
	}
}

static int bench_open(int ep, int port, const struct in_addr *src)
{
	struct sockaddr_in sin, from;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};

	if (fd < 0)
		return -1;
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_addr = *src;
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
		close(fd);
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	ev.data.fd = fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int bench_client(int port, double secs, int conc, struct in_addr *src, int nsrc)
{
	int ep = epoll_create1(0), inflight = 0, next = 0;
	long done = 0, failed = 0;
	double start = bench_now(), end = start + secs;
	struct epoll_event evs[256];

	while (bench_now() < end) {
		while (inflight < conc) {
			if (bench_open(ep, port, &src[next++ % nsrc]) < 0) {
				failed++;
				break;
			}
			inflight++;
		}
		int n = epoll_wait(ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			char buf[512];

			/* The server's line (SMTP refusals), EOF or reset: done either way. */
			while (recv(evs[i].data.fd, buf, sizeof(buf), 0) > 0)
				;
			epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
			bench_rst(evs[i].data.fd);
			inflight--;
			done++;
		}
	}
	printf("connections %ld seconds %.2f rate %.0f failed %ld\n", done, bench_now() - start,
	       (double)done / (bench_now() - start), failed);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "server") == 0)
		return bench_server(atoi(argv[2]), argc == 4 ? argv[3] : NULL);
	if (argc >= 6 && strcmp(argv[1], "client") == 0) {
		int nsrc = argc - 5;
		struct in_addr *src = calloc((size_t)nsrc, sizeof(*src));

		for (int i = 0; i < nsrc; i++)
			if (src == NULL || inet_pton(AF_INET, argv[5 + i], &src[i]) != 1) {
				fprintf(stderr, "bench_drop: bad source %s\n", argv[5 + i]);
				return 2;
			}
		return bench_client(atoi(argv[2]), atof(argv[3]), atoi(argv[4]), src, nsrc);
	}
	fprintf(stderr,
		"usage: bench_drop server PORT [LINE] | client PORT SECONDS CONCURRENCY SRC...\n");
	return 2;
}
