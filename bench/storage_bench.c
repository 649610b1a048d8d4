/* storage-bench [-s MiB] [-z PERCENT] [-c LIST] [DIR]: packs and unpacks a
 * generated image directory with each compression and prints the rates next
 * to this machine's baseline, measured first in the same run. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"
#include "storage/storage.h"

#define CHUNK ((size_t)4 << 20)
#define MIB   (1024.0 * 1024.0)

typedef struct opts {
	uint64_t size;
	unsigned zero_pct;
	const char *dir;
	const char *only;    /* comma-separated compressions, NULL for all */
	double ceiling_mibs; /* disk-to-disk copy, from the baseline */
} opts;

/* Pages like a process image: random (incompressible) pages with a share
 * of zero pages, spread over the file rather than in one block. */
static void fill_pages(uint8_t *buf, size_t len, unsigned zero_pct, uint64_t *s)
{
	for (size_t off = 0; off < len; off += 4096) {
		*s ^= *s << 13;
		*s ^= *s >> 7;
		*s ^= *s << 17;
		bool zero = *s % 100 < zero_pct;
		for (size_t i = 0; i < 4096; i += 8) {
			*s ^= *s << 13;
			*s ^= *s >> 7;
			*s ^= *s << 17;
			uint64_t v = zero ? 0 : *s;
			memcpy(buf + off + i, &v, 8);
		}
	}
}

static int write_image_file(const char *path, uint64_t size, unsigned zero_pct, uint64_t *seed)
{
	uint8_t *buf = malloc(CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), r = 0;

	if (!buf || fd < 0) {
		r = -errno;
		goto out;
	}
	for (uint64_t done = 0; done < size && r == 0; done += CHUNK) {
		size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;

		fill_pages(buf, CHUNK, zero_pct, seed);
		if (write(fd, buf, n) != (ssize_t)n)
			r = -EIO;
	}
	bench_drop_cache(fd);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* The engine's layout, roughly: one large page file per process, a few
 * small metadata files, a subdirectory. */
static int make_image(const char *img, const opts *o)
{
	static const char *small[] = {"inventory.json", "pstree.json", "sub/files.json"};
	uint64_t seed = 0x243f6a8885a308d3ull;
	char path[4096];
	int r;

	if (mkdir(img, 0700) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/sub", img);
	if (mkdir(path, 0700) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/pages-1.img", img);
	r = write_image_file(path, o->size * 3 / 4, o->zero_pct, &seed);
	snprintf(path, sizeof(path), "%s/sub/pages-2.img", img);
	if (r == 0)
		r = write_image_file(path, o->size - o->size * 3 / 4, o->zero_pct, &seed);
	for (size_t i = 0; i < 3 && r == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", img, small[i]);
		r = write_image_file(path, 4096, 0, &seed);
	}
	return r;
}

static bool selected(const opts *o, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = o->only; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return !o->only;
}

static void drop_path_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		bench_drop_cache(fd);
		close(fd);
	}
}

static int run_one(const char *img, const opts *o, storage_compression c)
{
	char dest[4096], out[4096];
	storage_stats ps, us;
	cd_err err = {0};
	double t0, pack_s, unpack_s;

	snprintf(dest, sizeof(dest), "%s/bench-ckpt%s", o->dir, storage_compression_suffix(c));
	snprintf(out, sizeof(out), "%s/bench-restored", o->dir);
	t0 = bench_now();
	if (storage_pack(img, dest, c, NULL, &ps, &err) < 0) {
		fprintf(stderr, "storage-bench: %s\n", err.msg);
		return -1;
	}
	pack_s = bench_now() - t0;
	if (c != STORAGE_NONE)
		drop_path_cache(dest);
	t0 = bench_now();
	if (storage_unpack(dest, out, NULL, NULL, &us, &err) < 0) {
		fprintf(stderr, "storage-bench: %s\n", err.msg);
		storage_remove(dest, &err);
		return -1;
	}
	unpack_s = bench_now() - t0;
	double pack_mibs = (double)ps.payload_bytes / MIB / pack_s;
	double unpack_mibs = (double)us.payload_bytes / MIB / unpack_s;
	printf("  %-5s %9.0f %5.0f%% %11.0f %5.0f%% %11.0f %7.2f\n", storage_compression_name(c),
	       pack_mibs, 100 * pack_mibs / o->ceiling_mibs, unpack_mibs,
	       100 * unpack_mibs / o->ceiling_mibs, (double)ps.stored_bytes / MIB,
	       (double)ps.payload_bytes / (double)ps.stored_bytes);
	fflush(stdout);
	storage_remove(out, &err);
	storage_remove(dest, &err);
	return 0;
}

static int parse(int argc, char **argv, opts *o)
{
	int opt;

	*o = (opts){.size = 512ull << 20, .zero_pct = 30, .dir = "/var/tmp"};
	while ((opt = getopt(argc, argv, "s:z:c:h")) != -1) {
		if (opt == 's' && atoll(optarg) > 0)
			o->size = (uint64_t)atoll(optarg) << 20;
		else if (opt == 'z' && atoi(optarg) >= 0 && atoi(optarg) <= 100)
			o->zero_pct = (unsigned)atoi(optarg);
		else if (opt == 'c')
			o->only = optarg;
		else {
			fprintf(stderr,
			        "usage: %s [-s MiB (512)] [-z zero-page %% (30)] [-c none,tar,...] "
			        "[DIR (/var/tmp)]\n",
			        argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind < argc)
		o->dir = argv[optind];
	return -1;
}

int main(int argc, char **argv)
{
	char img[3072];
	baseline b = {0};
	cd_err err = {0};
	opts o;
	int r = parse(argc, argv, &o), failed = 0;

	if (r >= 0)
		return r;
	if (baseline_measure(o.dir, o.size, &b) < 0)
		return 1;
	baseline_print(&b, o.dir, o.size);
	snprintf(img, sizeof(img), "%s/bench-image-%d", o.dir, (int)getpid());
	if ((r = make_image(img, &o)) < 0) {
		fprintf(stderr, "storage-bench: %s: %s\n", img, strerror(-r));
		storage_remove(img, &err);
		return 1;
	}
	o.ceiling_mibs = 1024.0 / (1.0 / b.read_direct_gibs + 1.0 / b.write_direct_gibs);
	printf("  disk-to-disk copy ceiling %6.2f GiB/s (1 / (1/read + 1/write), O_DIRECT)\n",
	       o.ceiling_mibs / 1024.0);
	printf("image: %llu MiB, %u%% zero pages; MiB/s of image payload, %% of the copy ceiling\n"
	       "(none = a full copy; ratio = payload / stored)\n",
	       (unsigned long long)(o.size >> 20), o.zero_pct);
	printf("  %-5s %16s %18s %11s %7s\n", "", "pack MiB/s", "unpack MiB/s", "stored MiB",
	       "ratio");
	for (storage_compression c = STORAGE_NONE; c <= STORAGE_ZSTD; c++)
		if (selected(&o, storage_compression_name(c)) && run_one(img, &o, c) < 0)
			failed = 1;
	storage_remove(img, &err);
	return failed;
}
