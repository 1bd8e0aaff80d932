/*
 * unixsock.h - binding a unix-domain socket that another user will own:
 * the control socket (control.c) and the policy service's (policy.c).
 */
#ifndef MXG_UNIXSOCK_H
#define MXG_UNIXSOCK_H

#include <sys/types.h>

struct sockaddr_un;

/*
 * unixsock_bind_as - bind fd to sun's path, the socket created with mode
 * (0777 & ~mask) and owned by uid:gid from the start. mxguard is root here
 * and the directory may belong to run_as: a chmod or chown by path after
 * the bind would follow whatever run_as had put there meanwhile (a symlink
 * to /etc/shadow). So nothing is done by path: the umask gives the mode,
 * and the filesystem ids of the bind (setfsuid, setfsgid) give the owner,
 * as if uid:gid had bound it. Not root: the caller's own ids. A stale
 * socket at the path is unlinked first (unlink does not follow a
 * symlink). Returns bind's result, errno kept.
 */
int unixsock_bind_as(int fd, const struct sockaddr_un *sun, uid_t uid, gid_t gid, mode_t mask);

#endif
