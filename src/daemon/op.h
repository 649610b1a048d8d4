/* A checkpoint/restore operation shared between a request handler and its
 * worker (cr_worker_spawn): a shared page (a memfd) the worker writes its
 * progress, timings and result into, and a registry by client-chosen id so
 * that the CLI can poll the progress of its request (GET /v1/ops/ID) while
 * it runs. */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"

#define OP_PHASES 16
#define OP_ID_MAX 64

struct op_timing {
	char name[64];
	double ms;
};

struct op_shared {
	/* progress: read by other threads while the worker writes it */
	char phase[24];
	double phase_start_ms; /* CLOCK_MONOTONIC, the same in every process */
	uint64_t done, total;
	/* results */
	cd_err err;
	char scratch[4096]; /* made by the worker, removed by the daemon */
	pid_t pid;
	uint64_t size;
	int ntimings;
	struct op_timing timings[OP_PHASES];
	/* dump: the JSON object of the image's plugin-NAME.json files, by
	 * plugin (the worker's, recorded by the daemon); "" when none */
	char plugins[16384];
};

/* A zeroed shared page, registered under id when id is not NULL/empty
 * (-EEXIST when that id is in flight). */
int op_new(const char *id, struct op_shared **ret, cd_err *err);
/* Unregisters and unmaps; NULL is fine. */
void op_free(struct op_shared *op);
/* The fd of op's page, for its worker (the daemon keeps it until op_free). */
int op_fd(const struct op_shared *op);
/* Worker side: the page behind fd (closed once mapped); NULL on error. */
struct op_shared *op_map(int fd, cd_err *err);

/* Worker side: a phase starts (for progress), a phase's time is recorded. */
void op_phase(struct op_shared *op, const char *phase);
void op_time(struct op_shared *op, const char *name, double ms);
double op_now_ms(void);
/* A storage_progress_fn; userdata is the op. */
void op_progress_cb(uint64_t done, uint64_t total, void *userdata);
/* A cd_progress_fn: the engine's stage becomes the phase. */
void op_engine_progress_cb(const char *stage, uint64_t done, uint64_t total, void *userdata);

/* {"phase", "done", "total", "seconds"} of an operation in flight (seconds
 * into the phase), NULL when unknown. */
json_t *op_progress_json(const char *id);
/* The timings as a JSON array in the order they were taken: [{name, ms}]. */
json_t *op_timings_json(const struct op_shared *op);
