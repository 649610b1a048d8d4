/* The terminal of an attachable job: the daemon keeps the pty master,
 * buffers output while nobody is attached, and relays between the master
 * and at most one attached client (a newer client replaces the older). */
#pragma once

#include <stddef.h>

#include "shared/error.h"

#define JOB_IO_BUFFER_MAX (1 << 20) /* output kept for the next client */

struct job_io;

/* Takes ownership of master (the pty master fd). */
int job_io_start(int master, struct job_io **ret_io, cd_err *err);

/* How a client socket is closed: the HTTP server owns upgraded sockets. */
typedef void (*job_io_close_fn)(void *arg);

/* Hands a connected client socket (after the HTTP upgrade) to the relay;
 * extra holds bytes the client already sent. The relay closes sock with
 * close_fn(close_arg), or close() when close_fn is NULL. */
void job_io_attach(struct job_io *io, int sock, const void *extra, size_t extra_len,
                   job_io_close_fn close_fn, void *close_arg);

/* The job has exited with code: drain, tell the client, hang up. */
void job_io_exited(struct job_io *io, int code);

/* Stops the relay thread and frees everything; NULL is fine. */
void job_io_free(struct job_io *io);
