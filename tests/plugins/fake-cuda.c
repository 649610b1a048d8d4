/* A fake CUDA driver for the gpu plugin's tests on machines with no GPU:
 * built as libcuda.so.1, it exports the checkpoint entry points and plays
 * the driver's state machine over a file.
 *
 *   FAKE_CUDA_PIDS  file of "PID STATE" lines (0 running, 1 locked,
 *                   2 checkpointed, 3 failed): the processes the driver
 *                   knows; calls update it
 *   FAKE_CUDA_LOG   each lock/checkpoint/restore/unlock is appended as
 *                   "CALL PID" (lock adds " timeout=MS")
 *   FAKE_CUDA_FAIL  the name of one call (lock, checkpoint, restore, unlock,
 *                   state, tid) that answers CUDA_ERROR_NOT_SUPPORTED
 *
 * Built with FAKE_CUDA_NO_CKPT it exports only cuDriverGetVersion: a driver
 * older than the checkpoint API. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_SUCCESS               0
#define CUDA_ERROR_INVALID_VALUE   1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_NOT_SUPPORTED   801
#define CUDA_ERROR_ILLEGAL_STATE   401
#define MAX_PIDS                   64

#define EXPORT __attribute__((visibility("default")))

EXPORT int cuDriverGetVersion(int *version);

int cuDriverGetVersion(int *version)
{
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	*version = 13000;
	return CUDA_SUCCESS;
}

#ifndef FAKE_CUDA_NO_CKPT

struct entry {
	int pid, state;
};

static size_t load(struct entry *e)
{
	const char *path = getenv("FAKE_CUDA_PIDS");
	size_t n = 0;
	FILE *f;

	if (!path || !(f = fopen(path, "re")))
		return 0;
	while (n < MAX_PIDS && fscanf(f, "%d %d", &e[n].pid, &e[n].state) == 2)
		n++;
	fclose(f);
	return n;
}

static void save(const struct entry *e, size_t n)
{
	const char *path = getenv("FAKE_CUDA_PIDS");
	FILE *f;

	if (!path || !(f = fopen(path, "we")))
		return;
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%d %d\n", e[i].pid, e[i].state);
	fclose(f);
}

static void record(const char *call, int pid, unsigned timeout_ms)
{
	const char *path = getenv("FAKE_CUDA_LOG");
	FILE *f;

	if (!path || !(f = fopen(path, "ae")))
		return;
	if (!strcmp(call, "lock"))
		fprintf(f, "%s %d timeout=%u\n", call, pid, timeout_ms);
	else
		fprintf(f, "%s %d\n", call, pid);
	fclose(f);
}

static int failing(const char *call)
{
	const char *f = getenv("FAKE_CUDA_FAIL");

	return f && !strcmp(f, call);
}

/* One state transition: from must hold, then the state becomes to. */
static int transition(const char *call, int pid, int from, int to, unsigned timeout_ms)
{
	struct entry e[MAX_PIDS];
	size_t n = load(e);

	record(call, pid, timeout_ms);
	if (failing(call))
		return CUDA_ERROR_NOT_SUPPORTED;
	for (size_t i = 0; i < n; i++) {
		if (e[i].pid != pid)
			continue;
		if (e[i].state != from)
			return CUDA_ERROR_ILLEGAL_STATE;
		e[i].state = to;
		save(e, n);
		return CUDA_SUCCESS;
	}
	return CUDA_ERROR_NOT_INITIALIZED;
}

struct args {
	unsigned timeout_ms;
	unsigned reserved0;
	uint64_t reserved1[7];
};

EXPORT int cuCheckpointProcessGetState(int pid, int *state);
EXPORT int cuCheckpointProcessGetRestoreThreadId(int pid, int *tid);
EXPORT int cuCheckpointProcessLock(int pid, struct args *a);
EXPORT int cuCheckpointProcessCheckpoint(int pid, struct args *a);
EXPORT int cuCheckpointProcessRestore(int pid, struct args *a);
EXPORT int cuCheckpointProcessUnlock(int pid, struct args *a);

int cuCheckpointProcessGetState(int pid, int *state)
{
	struct entry e[MAX_PIDS];
	size_t n = load(e);

	if (failing("state"))
		return CUDA_ERROR_NOT_SUPPORTED;
	for (size_t i = 0; i < n; i++)
		if (e[i].pid == pid) {
			*state = e[i].state;
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_INITIALIZED;
}

/* The driver's restore thread: here always the thread after the leader. */
int cuCheckpointProcessGetRestoreThreadId(int pid, int *tid)
{
	int state;

	if (failing("tid"))
		return CUDA_ERROR_NOT_SUPPORTED;
	if (cuCheckpointProcessGetState(pid, &state) != CUDA_SUCCESS)
		return CUDA_ERROR_NOT_INITIALIZED;
	*tid = pid + 1;
	return CUDA_SUCCESS;
}

int cuCheckpointProcessLock(int pid, struct args *a)
{
	return transition("lock", pid, 0, 1, a->timeout_ms);
}

int cuCheckpointProcessCheckpoint(int pid, struct args *a)
{
	return transition("checkpoint", pid, 1, 2, 0);
}

int cuCheckpointProcessRestore(int pid, struct args *a)
{
	return transition("restore", pid, 2, 1, 0);
}

int cuCheckpointProcessUnlock(int pid, struct args *a)
{
	return transition("unlock", pid, 1, 0, 0);
}

#endif
