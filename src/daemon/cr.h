/* Checkpoint/restore requests (POST /v1/dump, POST /v1/restore, checkpoint
 * records): checked in the request thread, engine work in a worker
 * (cr_worker_spawn), so that an engine crash fails one request. */
#pragma once

#include <jansson.h>

#include "daemon/api.h"
#include "engine/engine.h"
#include "job/manager.h"
#include "shared/error.h"
#include "storage/storage.h"

/* Body and reply: see docs/api.md. client_fd is the request's socket (-1:
 * none): a client that hangs up before the work is done cancels it. */
int cr_dump(struct api *api, const struct job_caller *caller, int client_fd, json_t *body,
            json_t **ret, cd_err *err);
int cr_restore(struct api *api, const struct job_caller *caller, int client_fd, json_t *body,
               json_t **ret, cd_err *err);
/* Removes a checkpoint's files, then its record. */
int cr_checkpoint_delete(struct api *api, const struct job_caller *caller, const char *id,
                         cd_err *err);

struct op_shared;
/* Waits for a worker (cr_worker_spawn); 0 when it exited 0, else the error
 * the worker left in op (or a generic one when it died). */
int cr_wait_worker(struct api *api, pid_t pid, struct op_shared *op, const char *what, cd_err *err);

/* Waits until the worker writes to fd (or closes it). If the client hangs
 * up meanwhile, the worker is cancelled (SIGTERM) and true is returned. */
bool cr_wait_worker_pipe(int fd, int client_fd, pid_t worker, const char *what);

/* In a worker, first: SIGTERM (the daemon died, shut down, or the client
 * went away) cancels the engine's work at its next safe point rather than
 * ending the worker mid-way, with a tree stopped or half made. */
void cr_worker_cancellable(void);

/* The format of the checkpoint at path: a directory is an image directory;
 * a file must be named like an archive of ours (.tar, .tar.gz, …; anything
 * else is refused, naming the accepted suffixes) and is read by its content,
 * so an archive under another of our suffixes still restores. */
int cr_image_format(const char *path, storage_compression *ret, cd_err *err);

/* The engine's stats as timings of op (--profiling), phase by phase, then
 * the engine's total. */
void cr_dump_timings(struct op_shared *op, const struct cd_dump_stats *st, bool leave_running);
void cr_restore_timings(struct op_shared *op, const struct cd_restore_stats *st);
