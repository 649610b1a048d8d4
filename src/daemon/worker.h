/* The worker of a dump or restore: a program of its own (fork, then exec of
 * /proc/self/exe as `cedana __worker KIND ARGS`), never a bare fork of the
 * daemon.
 *
 * Why not a bare fork: the daemon has threads (one per connection, the
 * job relays). fork copies every lock as it is at that instant, and a lock
 * another thread held then stays held in the child for good. glibc's
 * malloc and stdio take care of that; the sanitizers' allocator does not
 * (gcc 12's ASan: a threaded test program's forked children spun forever
 * in its lock, 3 in 2,200; a restore worker of the ASan daemon hung in
 * full `make test` runs with two other restores in flight), nor do the libraries a worker may
 * load. An exec'd worker starts with nothing held.
 *
 * What the worker needs crosses as ARGS, a JSON object (kind's own fields,
 * plus "op_fd" and "log_level"), and as fds it inherits, whose numbers
 * ARGS gives. Its progress and result go to the operation's shared page
 * (op.h). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon/api.h"
#include "daemon/op.h"
#include "shared/error.h"

#define CR_WORKER_ARG "__worker" /* a worker's argv[1] */

/* Daemon side: forks and registers a worker (job_manager_fork_worker) that
 * execs as kind with args (op's fd and the log level added; args stays the
 * caller's), keeping fds and op's page. */
int cr_worker_spawn(struct api *api, const char *kind, json_t *args, struct op_shared *op,
                    const int *fds, size_t nfds, pid_t *ret_pid, cd_err *err);

/* Worker side: `cedana __worker KIND ARGS`. Returns the exit status; the
 * caller leaves by _exit, as a forked worker did (no atexit work, no leak
 * check of a worker). */
int cr_worker_main(int argc, char **argv);

/* The kinds, in dump.c and restore.c: run the worker from args, op mapped. */
int cr_dump_worker_main(json_t *args, struct op_shared *op);
int cr_restore_worker_main(json_t *args, struct op_shared *op);
