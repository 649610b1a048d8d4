/* This machine's ceilings, measured in the same run as the benchmark that
 * compares itself with them: a throughput means little without the memcpy
 * and disk bandwidth next to it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct baseline {
	double memcpy_gibs;         /* one core, buffers far larger than the caches */
	double write_buffered_gibs; /* write() through the page cache, then fsync */
	double write_direct_gibs;   /* O_DIRECT from one reused aligned buffer */
	double read_direct_gibs;    /* O_DIRECT into one reused aligned buffer */
	double read_buffered_gibs;  /* read() of a buffered-written file not in the page cache */
	double first_touch_gibs;    /* one write per page of fresh anonymous memory */
	/* read() of a file written with O_DIRECT, the first time after: how a
	 * restore meets the page files a dump wrote. On a VM the host may still
	 * cache what the guest wrote through its page cache, so the buffered
	 * file above can read faster than the disk does. */
	double read_fresh_gibs;
} baseline;

/* Measures with size bytes of I/O in a scratch file under dir (removed
 * afterwards). Returns 0, or -errno with a message on stderr. */
int baseline_measure(const char *dir, uint64_t size, baseline *ret);

void baseline_print(const baseline *b, const char *dir, uint64_t size);

/* The same as one JSON object on one line (GiB/s), for scripts. */
void baseline_print_json(const baseline *b, uint64_t size);

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Evicts a file's pages from the page cache (after fsync), so the next read
 * comes from the disk. */
void bench_drop_cache(int fd);
