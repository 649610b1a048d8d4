/* The slice of the CUDA driver API (libcuda.so.1) and NVML the gpu plugin
 * uses, loaded with dlopen at run time so that cedana builds and runs with
 * no CUDA on the machine. Every cuCheckpointProcess* call acts on another
 * process by pid and needs no cuInit in ours. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* cuCheckpointProcessGetState answers (CUprocessState). */
enum cuda_proc_state {
	CUDA_PROC_RUNNING = 0,
	CUDA_PROC_LOCKED = 1,
	CUDA_PROC_CHECKPOINTED = 2,
	CUDA_PROC_FAILED = 3,
};

/* CUcheckpointLockArgs and the other argument structs: 64 bytes, reserved
 * fields zero. Only the lock has a field we set. */
struct cuda_ckpt_args {
	unsigned timeout_ms;
	unsigned reserved0;
	uint64_t reserved1[7];
};
_Static_assert(sizeof(struct cuda_ckpt_args) == 64, "CUcheckpoint*Args is 64 bytes");

struct cuda_api {
	void *lib;
	int (*driver_get_version)(int *version);
	int (*get_error_name)(int result, const char **name); /* optional */
	int (*get_state)(int pid, int *state);
	int (*get_restore_tid)(int pid, int *tid);
	int (*lock)(int pid, struct cuda_ckpt_args *args);
	int (*checkpoint)(int pid, struct cuda_ckpt_args *args);
	int (*restore)(int pid, struct cuda_ckpt_args *args);
	int (*unlock)(int pid, struct cuda_ckpt_args *args);
};

enum cuda_open_result {
	CUDA_OPEN_OK = 0,
	CUDA_OPEN_NO_DRIVER = 1, /* libcuda.so.1 cannot be loaded */
	CUDA_OPEN_NO_API = 2,    /* loaded, but without the checkpoint entry points */
};

/* Loads libcuda.so.1 (or $CEDANA_GPU_LIBCUDA, for tests) into api. On
 * failure api is left closed and why says what is missing. */
enum cuda_open_result cuda_api_open(struct cuda_api *api, char *why, size_t whylen);
void cuda_api_close(struct cuda_api *api);

/* "CUDA_ERROR_NOT_SUPPORTED (801)" for a CUresult. */
const char *cuda_result_str(const struct cuda_api *api, int result, char *buf, size_t len);

/* Device memory NVML says pid uses, summed over the GPUs; -1 when NVML
 * (libnvidia-ml.so.1, or $CEDANA_GPU_LIBNVML) is not there or does not
 * know the pid. */
int64_t nvml_process_memory(pid_t pid);
