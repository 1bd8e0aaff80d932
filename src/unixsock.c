/*
 * unixsock.c - binding a unix-domain socket for another user (see
 * unixsock.h): the one place that switches filesystem ids around a bind.
 */
#include <errno.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unixsock.h"

int unixsock_bind_as(int fd, const struct sockaddr_un *sun, uid_t uid, gid_t gid, mode_t mask)
{
	int as_root = geteuid() == 0, rc, saved;
	mode_t old = umask(mask);
	uid_t ofsuid = 0;
	gid_t ofsgid = 0;

	if (as_root) {
		ofsgid = (gid_t)setfsgid(gid);
		ofsuid = (uid_t)setfsuid(uid);
	}
	unlink(sun->sun_path);
	rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	if (as_root) {
		setfsuid(ofsuid);
		setfsgid(ofsgid);
	}
	umask(old);
	errno = saved;
	return rc;
}
