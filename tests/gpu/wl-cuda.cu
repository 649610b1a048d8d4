// GPU workload for scripts/gpu-check.sh: fills MIB MiB of device memory
// with a pattern, then keeps verifying it on the device and counting.
// Prints "READY <MiB> MiB pid <pid>", then "count N ok" after each pass;
// "FAIL: ..." (exit 1) on a mismatch or a CUDA error. Each pass also bumps
// a counter kept on the device, so the count printed is the device's: a
// restored process whose device state came back wrong cannot count on.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

static __device__ unsigned pattern(size_t i, unsigned seed)
{
	return (unsigned)i * 2654435761u ^ seed;
}

__global__ void fill(unsigned *p, size_t n, unsigned seed)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		p[i] = pattern(i, seed);
}

__global__ void check(const unsigned *p, size_t n, unsigned seed, unsigned long long *bad)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		if (p[i] != pattern(i, seed))
			atomicAdd(bad, 1ULL);
}

__global__ void bump(unsigned long long *count)
{
	++*count;
}

struct stats {
	unsigned long long bad, count;
};

static int fail(const char *what, cudaError_t e)
{
	printf("FAIL: %s: %s\n", what, cudaGetErrorString(e));
	fflush(stdout);
	return 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	unsigned period_ms = argc > 2 ? atoi(argv[2]) : 200;
	size_t n = mib * 1024 * 1024 / sizeof(unsigned);
	const unsigned seed = 0x5eed;
	unsigned *data;
	stats *dev, host = {0, 0};
	cudaError_t e;

	if ((e = cudaMalloc(&data, n * sizeof(unsigned))) != cudaSuccess)
		return fail("cudaMalloc", e);
	if ((e = cudaMalloc(&dev, sizeof(stats))) != cudaSuccess)
		return fail("cudaMalloc", e);
	cudaMemset(dev, 0, sizeof(stats));
	fill<<<1024, 256>>>(data, n, seed);
	if ((e = cudaDeviceSynchronize()) != cudaSuccess)
		return fail("fill", e);
	printf("READY %zu MiB pid %d\n", mib, (int)getpid());
	fflush(stdout);
	for (unsigned long long expect = 1;; expect++) {
		cudaMemset(&dev->bad, 0, sizeof(dev->bad));
		check<<<1024, 256>>>(data, n, seed, &dev->bad);
		bump<<<1, 1>>>(&dev->count);
		if ((e = cudaMemcpy(&host, dev, sizeof(host), cudaMemcpyDeviceToHost)) != cudaSuccess)
			return fail("cudaMemcpy", e);
		if (host.bad || host.count != expect) {
			printf("FAIL: pass %llu: %llu words differ, device count %llu\n", expect,
			       host.bad, host.count);
			fflush(stdout);
			return 1;
		}
		printf("count %llu ok\n", host.count);
		fflush(stdout);
		usleep(period_ms * 1000);
	}
}
