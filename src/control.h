/*
 * control.h - the control socket: a local stream socket that answers one
 * command per line ("status", "reload", "ping", "list KIND", "add white
 * ENTRY", "del KIND KEY") with one JSON line.
 * mxguardctl is its client.
 */
#ifndef MXG_CONTROL_H
#define MXG_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

struct mxg;
struct control;

/*
 * control_open - create the socket at the configured path (a stale socket
 * file is replaced) owned by uid/gid with mode 0660, before privileges are
 * dropped. Returns NULL with a message in err.
 */
struct control *control_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz);

/* control_start - serve it on mxg->base. Returns 0 or -1. */
int control_start(struct control *ctl);

/* control_close - stop serving, remove the socket file, free. */
void control_close(struct control **ctlp);

#endif
