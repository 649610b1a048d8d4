#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "baseline.h"

#define CHUNK     ((size_t)4 << 20)
#define ALIGN     ((size_t)4096)
#define GIB       (1024.0 * 1024.0 * 1024.0)
#define COPY_SIZE ((size_t)256 << 20)

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_drop_cache(int fd)
{
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void fill_random(uint8_t *p, size_t n)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(p + i, &s, 8);
	}
}

static double measure_memcpy(uint64_t size)
{
	uint8_t *src = malloc(COPY_SIZE), *dst = malloc(COPY_SIZE);
	volatile uint8_t seen;
	double t0, t;
	uint64_t done = 0;

	if (!src || !dst) {
		free(src);
		free(dst);
		return 0;
	}
	/* fault both in with an untimed copy: we measure copying, not first
	 * touch (a memset of fresh memory may be optimized away) */
	fill_random(src, COPY_SIZE);
	memcpy(dst, src, COPY_SIZE);
	seen = dst[COPY_SIZE / 2];
	t0 = bench_now();
	while (done < size) {
		memcpy(dst, src, COPY_SIZE);
		done += COPY_SIZE;
		seen = dst[(done / 3) % COPY_SIZE]; /* the copy must happen */
	}
	t = bench_now() - t0;
	(void)seen;
	free(src);
	free(dst);
	return (double)done / GIB / t;
}

/* Fresh anonymous memory costs a fault, a zeroed page and, on a VM whose
 * host backs guest memory lazily, the host's own fault: every restore that
 * writes into new pages pays it. One byte per page touches each once. */
static double measure_first_touch(uint64_t size)
{
	volatile uint8_t *p =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0, t;

	if (p == MAP_FAILED)
		return 0;
	t0 = bench_now();
	for (uint64_t off = 0; off < size; off += ALIGN)
		p[off] = 1;
	t = bench_now() - t0;
	munmap((void *)p, size);
	return (double)size / GIB / t;
}

static int write_file(const char *path, const uint8_t *buf, uint64_t size, bool direct,
                      double *ret_gibs)
{
	int fd =
	    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
	double t0 = bench_now();

	if (fd < 0)
		return -errno;
	for (uint64_t done = 0; done < size; done += CHUNK) {
		if (write(fd, buf, CHUNK) != (ssize_t)CHUNK) {
			int r = -errno;
			close(fd);
			return r ? r : -EIO;
		}
	}
	if (fsync(fd) < 0) {
		close(fd);
		return -errno;
	}
	*ret_gibs = (double)size / GIB / (bench_now() - t0);
	bench_drop_cache(fd);
	close(fd);
	return 0;
}

static int read_file(const char *path, uint8_t *buf, bool direct, double *ret_gibs)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	uint64_t done = 0;
	double t0 = bench_now();
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, CHUNK)) > 0)
		done += (uint64_t)n;
	if (n < 0) {
		close(fd);
		return -errno;
	}
	*ret_gibs = (double)done / GIB / (bench_now() - t0);
	bench_drop_cache(fd);
	close(fd);
	return 0;
}

int baseline_measure(const char *dir, uint64_t size, baseline *ret)
{
	char *path = NULL;
	uint8_t *buf = NULL;
	int r;

	size = (size + CHUNK - 1) / CHUNK * CHUNK;
	if (asprintf(&path, "%s/.baseline-%d", dir, (int)getpid()) < 0)
		return -ENOMEM;
	if (posix_memalign((void **)&buf, ALIGN, CHUNK) != 0) {
		free(path);
		return -ENOMEM;
	}
	fill_random(buf, CHUNK);
	ret->memcpy_gibs = measure_memcpy(size);
	ret->first_touch_gibs = measure_first_touch(size);
	r = write_file(path, buf, size, false, &ret->write_buffered_gibs);
	if (r == 0)
		r = read_file(path, buf, false, &ret->read_buffered_gibs);
	if (r == 0) {
		unlink(path);
		r = write_file(path, buf, size, true, &ret->write_direct_gibs);
	}
	if (r == 0)
		r = read_file(path, buf, false, &ret->read_fresh_gibs);
	/* a file read once may be cached below the guest: the O_DIRECT read
	 * gets a file of its own, also on its first read */
	if (r == 0) {
		unlink(path);
		r = write_file(path, buf, size, true, &(double){0});
	}
	if (r == 0)
		r = read_file(path, buf, true, &ret->read_direct_gibs);
	if (r < 0)
		fprintf(stderr, "baseline: %s: %s\n", path, strerror(-r));
	unlink(path);
	free(path);
	free(buf);
	return r;
}

void baseline_print(const baseline *b, const char *dir, uint64_t size)
{
	printf("baseline (%s, %llu MiB, %ld CPUs):\n", dir, (unsigned long long)(size >> 20),
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("  memcpy, one core          %6.2f GiB/s\n", b->memcpy_gibs);
	printf("  first touch, anonymous    %6.2f GiB/s\n", b->first_touch_gibs);
	printf("  write, buffered + fsync   %6.2f GiB/s\n", b->write_buffered_gibs);
	printf("  write, O_DIRECT           %6.2f GiB/s\n", b->write_direct_gibs);
	printf("  read,  buffered, cold     %6.2f GiB/s\n", b->read_buffered_gibs);
	printf("  read,  first, of O_DIRECT %6.2f GiB/s\n", b->read_fresh_gibs);
	printf("  read,  O_DIRECT           %6.2f GiB/s\n", b->read_direct_gibs);
}

void baseline_print_json(const baseline *b, uint64_t size)
{
	printf("{\"size_mib\": %llu, \"cpus\": %ld, \"memcpy_gibs\": %.3f, "
	       "\"first_touch_gibs\": %.3f, \"write_buffered_gibs\": %.3f, "
	       "\"write_direct_gibs\": %.3f, \"read_buffered_gibs\": %.3f, "
	       "\"read_fresh_gibs\": %.3f, \"read_direct_gibs\": %.3f}\n",
	       (unsigned long long)(size >> 20), sysconf(_SC_NPROCESSORS_ONLN), b->memcpy_gibs,
	       b->first_touch_gibs, b->write_buffered_gibs, b->write_direct_gibs,
	       b->read_buffered_gibs, b->read_fresh_gibs, b->read_direct_gibs);
}
