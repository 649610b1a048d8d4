// Host <-> device copy bandwidth with pinned host memory (cudaMemcpy), the
// yardstick for the checkpoint and restore times in scripts/gpu-check.sh.
// Prints "D2H X.XX GiB/s" and "H2D X.XX GiB/s".
#include <cstdio>
#include <cstdlib>

static float copy_gibps(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, int reps)
{
	cudaEvent_t a, b;
	float ms = 0;

	cudaMemcpy(dst, src, bytes, kind); // warm-up
	cudaEventCreate(&a);
	cudaEventCreate(&b);
	cudaEventRecord(a);
	for (int i = 0; i < reps; i++)
		cudaMemcpy(dst, src, bytes, kind);
	cudaEventRecord(b);
	cudaEventSynchronize(b);
	cudaEventElapsedTime(&ms, a, b);
	return (float)((double)bytes * reps / (1 << 30) / (ms / 1000.0));
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	size_t bytes = mib << 20;
	void *host, *dev;

	if (cudaMallocHost(&host, bytes) != cudaSuccess || cudaMalloc(&dev, bytes) != cudaSuccess) {
		printf("FAIL: cannot allocate %zu MiB pinned and on the device\n", mib);
		return 1;
	}
	printf("D2H %.2f GiB/s\n", copy_gibps(host, dev, bytes, cudaMemcpyDeviceToHost, 5));
	printf("H2D %.2f GiB/s\n", copy_gibps(dev, host, bytes, cudaMemcpyHostToDevice, 5));
	return 0;
}
