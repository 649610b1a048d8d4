/* What NETLINK_SOCK_DIAG tells of one unix socket (sockdiag.c): the
 * kernel's own view, which no fd of the socket shows (state, peer, backlog,
 * connections waiting to be accepted, queued bytes). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/error.h"

#define CD_UNIX_ICONS_MAX 256

struct cd_unix_diag {
	uint8_t type;    /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state;   /* TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE, TCP_SYN_SENT */
	uint32_t peer;   /* the peer's inode, 0 when none */
	uint32_t rqueue; /* listening: connections waiting; else bytes (stream) or
	                  * the first message's bytes unread */
	uint32_t wqueue; /* listening: the backlog; else bytes not yet consumed by the peer */
	uint32_t nicons; /* listening: the connections waiting */
	/* listening: the first CD_UNIX_ICONS_MAX of them, in the order accept
	 * takes them, each by its client's inode (0: a client gone) */
	uint32_t icons[CD_UNIX_ICONS_MAX];
	uint8_t shutdown; /* the socket's own RCV_SHUTDOWN | SEND_SHUTDOWN */
	bool has_vfs;     /* bound in the filesystem: its socket file */
	uint32_t vfs_ino, vfs_dev;
	char name[108]; /* sun_path's bytes as bound */
	size_t namelen;
};

/* The diag of the unix socket of inode ino in the caller's network
 * namespace; -ENOENT when the kernel knows none there. */
int cd_unix_diag(uint32_t ino, struct cd_unix_diag *ret, cd_err *err);
