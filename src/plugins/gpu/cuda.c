/* dlopen of the CUDA driver API and NVML (cuda.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/gpu/cuda.h"

static const char *lib_name(const char *env, const char *dflt)
{
	const char *v = getenv(env);

	return v && *v ? v : dflt;
}

struct sym {
	const char *name;
	void **slot;
};

static enum cuda_open_result bind_syms(struct cuda_api *api, char *why, size_t whylen)
{
	const struct sym syms[] = {
	    {"cuDriverGetVersion", (void **)&api->driver_get_version},
	    {"cuCheckpointProcessGetState", (void **)&api->get_state},
	    {"cuCheckpointProcessGetRestoreThreadId", (void **)&api->get_restore_tid},
	    {"cuCheckpointProcessLock", (void **)&api->lock},
	    {"cuCheckpointProcessCheckpoint", (void **)&api->checkpoint},
	    {"cuCheckpointProcessRestore", (void **)&api->restore},
	    {"cuCheckpointProcessUnlock", (void **)&api->unlock},
	};

	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(api->lib, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(why, whylen, "driver lacks the checkpoint API (no %s)",
			         syms[i].name);
			return CUDA_OPEN_NO_API;
		}
	}
	/* Only for error messages: fall back to our own table without it. */
	api->get_error_name = (int (*)(int, const char **))dlsym(api->lib, "cuGetErrorName");
	return CUDA_OPEN_OK;
}

enum cuda_open_result cuda_api_open(struct cuda_api *api, char *why, size_t whylen)
{
	enum cuda_open_result r;

	memset(api, 0, sizeof(*api));
	api->lib = dlopen(lib_name("CEDANA_GPU_LIBCUDA", "libcuda.so.1"), RTLD_NOW | RTLD_LOCAL);
	if (!api->lib) {
		snprintf(why, whylen, "no driver (%s)", dlerror());
		return CUDA_OPEN_NO_DRIVER;
	}
	r = bind_syms(api, why, whylen);
	if (r != CUDA_OPEN_OK)
		cuda_api_close(api);
	return r;
}

void cuda_api_close(struct cuda_api *api)
{
	if (api->lib)
		dlclose(api->lib);
	memset(api, 0, sizeof(*api));
}

static const char *known_result(int result)
{
	static const struct {
		int code;
		const char *name;
	} names[] = {
	    {0, "CUDA_SUCCESS"},
	    {1, "CUDA_ERROR_INVALID_VALUE"},
	    {2, "CUDA_ERROR_OUT_OF_MEMORY"},
	    {3, "CUDA_ERROR_NOT_INITIALIZED"},
	    {4, "CUDA_ERROR_DEINITIALIZED"},
	    {100, "CUDA_ERROR_NO_DEVICE"},
	    {201, "CUDA_ERROR_INVALID_CONTEXT"},
	    {304, "CUDA_ERROR_OPERATING_SYSTEM"},
	    {400, "CUDA_ERROR_INVALID_HANDLE"},
	    {401, "CUDA_ERROR_ILLEGAL_STATE"},
	    {500, "CUDA_ERROR_NOT_FOUND"},
	    {600, "CUDA_ERROR_NOT_READY"},
	    {801, "CUDA_ERROR_NOT_SUPPORTED"},
	    {802, "CUDA_ERROR_SYSTEM_NOT_READY"},
	    {909, "CUDA_ERROR_TIMEOUT"},
	    {999, "CUDA_ERROR_UNKNOWN"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == result)
			return names[i].name;
	return "CUDA_ERROR";
}

const char *cuda_result_str(const struct cuda_api *api, int result, char *buf, size_t len)
{
	const char *name = NULL;

	if (!api->get_error_name || api->get_error_name(result, &name) != 0 || !name)
		name = known_result(result);
	snprintf(buf, len, "%s (%d)", name, result);
	return buf;
}

/* nvmlProcessInfo_v2_t, what nvmlDeviceGetComputeRunningProcesses_v3 fills. */
struct nvml_proc {
	unsigned pid;
	unsigned long long used_bytes;
	unsigned gpu_instance;
	unsigned compute_instance;
};

struct nvml_api {
	int (*init)(void);
	int (*shutdown)(void);
	int (*count)(unsigned *n);
	int (*handle)(unsigned i, void **dev);
	int (*procs)(void *dev, unsigned *n, struct nvml_proc *out);
};

static int64_t nvml_device_memory(const struct nvml_api *n, unsigned idx, pid_t pid)
{
	struct nvml_proc procs[256];
	unsigned count = sizeof(procs) / sizeof(procs[0]);
	int64_t sum = -1;
	void *dev;

	if (n->handle(idx, &dev) != 0 || n->procs(dev, &count, procs) != 0)
		return -1;
	for (unsigned i = 0; i < count; i++)
		if ((pid_t)procs[i].pid == pid && procs[i].used_bytes != ~0ULL)
			sum = (sum < 0 ? 0 : sum) + (int64_t)procs[i].used_bytes;
	return sum;
}

int64_t nvml_process_memory(pid_t pid)
{
	void *lib =
	    dlopen(lib_name("CEDANA_GPU_LIBNVML", "libnvidia-ml.so.1"), RTLD_NOW | RTLD_LOCAL);
	struct nvml_api n;
	int64_t total = -1;
	unsigned count;

	if (!lib)
		return -1;
	n.init = (int (*)(void))dlsym(lib, "nvmlInit_v2");
	n.shutdown = (int (*)(void))dlsym(lib, "nvmlShutdown");
	n.count = (int (*)(unsigned *))dlsym(lib, "nvmlDeviceGetCount_v2");
	n.handle = (int (*)(unsigned, void **))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	n.procs = (int (*)(void *, unsigned *, struct nvml_proc *))dlsym(
	    lib, "nvmlDeviceGetComputeRunningProcesses_v3");
	if (n.init && n.shutdown && n.count && n.handle && n.procs && n.init() == 0) {
		if (n.count(&count) == 0)
			for (unsigned i = 0; i < count; i++) {
				int64_t m = nvml_device_memory(&n, i, pid);
				if (m >= 0)
					total = (total < 0 ? 0 : total) + m;
			}
		n.shutdown();
	}
	dlclose(lib);
	return total;
}
