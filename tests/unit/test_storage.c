/* Storage: compression names, round trips for every compression, detection
 * from content, modes, sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "shared/error.h"
#include "storage/storage.h"
#include "test_storage_util.h"

static const storage_compression all[] = {STORAGE_NONE, STORAGE_TAR,  STORAGE_GZIP,
                                          STORAGE_LZ4,  STORAGE_ZLIB, STORAGE_ZSTD};

static void test_names_round_trip(void **state)
{
	static const char *names[] = {"none", "tar", "gzip", "lz4", "zlib", "zstd"};
	static const char *suffixes[] = {"",         ".tar",      ".tar.gz",
	                                 ".tar.lz4", ".tar.zlib", ".tar.zst"};
	cd_err err = {0};

	for (size_t i = 0; i < 6; i++) {
		storage_compression c;

		assert_int_equal(storage_compression_parse(names[i], &c, &err), 0);
		assert_int_equal(c, all[i]);
		assert_string_equal(storage_compression_name(c), names[i]);
		assert_string_equal(storage_compression_suffix(c), suffixes[i]);
	}
}

static void test_compression_from_suffix(void **state)
{
	assert_int_equal(storage_compression_from_suffix("/tmp/a.tar"), STORAGE_TAR);
	assert_int_equal(storage_compression_from_suffix("/tmp/a.tar.gz"), STORAGE_GZIP);
	assert_int_equal(storage_compression_from_suffix("a.tar.lz4"), STORAGE_LZ4);
	assert_int_equal(storage_compression_from_suffix("a.tar.zlib"), STORAGE_ZLIB);
	assert_int_equal(storage_compression_from_suffix("a.tar.zst"), STORAGE_ZSTD);
	assert_int_equal(storage_compression_from_suffix("/tmp/dump-job-1"), STORAGE_NONE);
	assert_int_equal(storage_compression_from_suffix("a.weird"), STORAGE_NONE);
	assert_int_equal(storage_compression_from_suffix(".tar"), STORAGE_NONE);
	assert_int_equal(storage_compression_from_suffix(NULL), STORAGE_NONE);
}

static void test_unknown_name_refused(void **state)
{
	storage_compression c = STORAGE_TAR;
	cd_err err = {0};

	assert_int_equal(storage_compression_parse("bzip2", &c, &err), -EINVAL);
	assert_int_equal(c, STORAGE_TAR);
	assert_non_null(strstr(err.msg, "unknown compression 'bzip2'"));
	assert_non_null(strstr(err.msg, "zstd"));
	assert_int_equal(storage_compression_parse("", &c, &err), -EINVAL);
	assert_int_equal(storage_compression_parse("GZIP", &c, &err), -EINVAL);
	assert_string_equal(storage_compression_name((storage_compression)42), "unknown");
}

static void test_pack_unknown_compression_creates_nothing(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "out.tar");
	cd_err err = {0};

	tu_make_small_image(img);
	assert_int_equal(storage_pack(img, dest, (storage_compression)9, NULL, NULL, &err),
	                 -EINVAL);
	assert_int_equal(tu_count_entries(dir), 1);
	tu_rmtree(dir);
	free(img);
	free(dest);
	free(dir);
}

/* Packs the sample image with c, checks the result's modes, unpacks it and
 * compares with the original. */
static void round_trip(storage_compression c)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *name = NULL, *dest, *out;
	storage_stats ps = {0}, us = {0};
	storage_compression found;
	cd_err err = {0};
	uint64_t size = 0;

	assert_true(asprintf(&name, "ckpt%s", storage_compression_suffix(c)) > 0);
	dest = tu_join(dir, name);
	out = tu_join(dir, "restored");
	tu_make_image(img);
	umask(022);
	if (storage_pack(img, dest, c, NULL, &ps, &err) < 0)
		fail_msg("pack %s: %s", storage_compression_name(c), err.msg);
	assert_int_equal(ps.files, 4);
	assert_int_equal(ps.payload_bytes, (6u << 20) + 123 + (1u << 20) + 4096 + 11);
	assert_int_equal(tu_mode(dest), c == STORAGE_NONE ? 0700 : 0600);
	assert_int_equal(storage_size(dest, &size, &err), 0);
	assert_int_equal(size, ps.stored_bytes);
	/* source left in place; only img, the result, and nothing temporary */
	assert_int_equal(tu_count_entries(dir), 2);

	if (storage_unpack(dest, out, NULL, &found, &us, &err) < 0)
		fail_msg("unpack %s: %s", storage_compression_name(c), err.msg);
	assert_int_equal(found, c);
	assert_int_equal(us.files, ps.files);
	assert_int_equal(us.payload_bytes, ps.payload_bytes);
	tu_assert_same_tree(img, out);
	char *deep = tu_join(out, "sub/deeper/pages-2.img"), *sub = tu_join(out, "sub");
	assert_int_equal(tu_mode(out), 0700);
	assert_int_equal(tu_mode(sub), 0700);
	assert_int_equal(tu_mode(deep), 0600);
	assert_int_equal(tu_count_entries(dir), 3);

	tu_rmtree(dir);
	free(deep);
	free(sub);
	free(name);
	free(dest);
	free(out);
	free(img);
	free(dir);
}

static void test_round_trip_none(void **state)
{
	round_trip(STORAGE_NONE);
}

static void test_round_trip_tar(void **state)
{
	round_trip(STORAGE_TAR);
}

static void test_round_trip_gzip(void **state)
{
	round_trip(STORAGE_GZIP);
}

static void test_round_trip_lz4(void **state)
{
	round_trip(STORAGE_LZ4);
}

static void test_round_trip_zlib(void **state)
{
	round_trip(STORAGE_ZLIB);
}

static void test_round_trip_zstd(void **state)
{
	round_trip(STORAGE_ZSTD);
}

static void test_compression_shrinks_zero_pages(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");
	cd_err err = {0};

	tu_make_image(img);
	for (size_t i = 2; i < 6; i++) {
		char *dest = NULL;
		storage_stats st;

		assert_true(asprintf(&dest, "%s/c%zu", dir, i) > 0);
		assert_int_equal(storage_pack(img, dest, all[i], NULL, &st, &err), 0);
		/* a third of the pages are zeros */
		assert_true(st.stored_bytes < st.payload_bytes * 9 / 10);
		free(dest);
	}
	tu_rmtree(dir);
	free(img);
	free(dir);
}

/* Inflates a whole gzip (window_bits 31) or zlib (15) file with zlib itself;
 * returns the inflated length. */
static size_t inflate_all(const char *path, int window_bits, uint8_t *out, size_t cap)
{
	size_t len;
	uint8_t *in = tu_read(path, &len);
	z_stream z = {0};

	assert_int_equal(inflateInit2(&z, window_bits), Z_OK);
	z.next_in = in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	len = z.total_out;
	inflateEnd(&z);
	free(in);
	return len;
}

/* Our gzip and zlib streams are compressed in parallel blocks; they must
 * still be single standard streams, with correct trailers, around the same
 * tar as the tar format. */
static void test_deflate_streams_are_standard(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *tar = tu_join(dir, "c.tar");
	char *gz = tu_join(dir, "c.tar.gz"), *zl = tu_join(dir, "c.tar.zlib");
	size_t cap = 16 << 20, tar_len;
	uint8_t *out = malloc(cap);
	cd_err err = {0};

	assert_non_null(out);
	tu_make_image(img);
	assert_int_equal(storage_pack(img, tar, STORAGE_TAR, NULL, NULL, &err), 0);
	assert_int_equal(storage_pack(img, gz, STORAGE_GZIP, NULL, NULL, &err), 0);
	assert_int_equal(storage_pack(img, zl, STORAGE_ZLIB, NULL, NULL, &err), 0);
	free(tu_read(tar, &tar_len));
	assert_int_equal(inflate_all(gz, 31, out, cap), tar_len);
	assert_memory_equal(out + 257, "ustar", 5);
	assert_int_equal(inflate_all(zl, 15, out, cap), tar_len);
	assert_memory_equal(out + 257, "ustar", 5);
	tu_rmtree(dir);
	free(out);
	free(zl);
	free(gz);
	free(tar);
	free(img);
	free(dir);
}

static void test_none_remove_source_moves(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "final");
	char *ref = tu_join(dir, "ref"), *file = tu_join(dest, "a/one");
	storage_opts o = {.remove_source = true};
	cd_err err = {0};

	tu_make_small_image(img);
	tu_make_small_image(ref);
	assert_int_equal(storage_pack(img, dest, STORAGE_NONE, &o, NULL, &err), 0);
	assert_int_equal(access(img, F_OK), -1);
	tu_assert_same_tree(ref, dest);
	assert_int_equal(tu_mode(dest), 0700);
	assert_int_equal(tu_mode(file), 0600);
	tu_rmtree(dir);
	free(file);
	free(ref);
	free(dest);
	free(img);
	free(dir);
}

/* The image on another filesystem (tmpfs): rename fails with EXDEV, so the
 * directory is copied, then the source removed. */
static void test_none_across_filesystems(void **state)
{
	char *dir = tu_tmpdir(), *dest = tu_join(dir, "final"), *ref = tu_join(dir, "ref");
	char shm[] = "/dev/shm/storage-test-XXXXXX";
	storage_opts o = {.remove_source = true};
	struct stat a, b;
	cd_err err = {0};

	if (!mkdtemp(shm)) {
		tu_rmtree(dir);
		skip();
	}
	char *img = tu_join(shm, "img");
	assert_int_equal(stat(shm, &a), 0);
	assert_int_equal(stat(dir, &b), 0);
	if (a.st_dev == b.st_dev) {
		tu_rmtree(shm);
		tu_rmtree(dir);
		skip();
	}
	tu_make_image(img);
	tu_make_image(ref);
	if (storage_pack(img, dest, STORAGE_NONE, &o, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(access(img, F_OK), -1);
	tu_assert_same_tree(ref, dest);
	assert_int_equal(tu_count_entries(dir), 2);
	tu_rmtree(shm);
	tu_rmtree(dir);
	free(img);
	free(ref);
	free(dest);
	free(dir);
}

static void test_detect_ignores_suffix(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");
	cd_err err = {0};

	tu_make_small_image(img);
	for (size_t i = 1; i < 6; i++) {
		char *dest = tu_join(dir, "ckpt.tar.gz"), *odd = tu_join(dir, "ckpt.weird");
		char *out = tu_join(dir, "out");
		storage_compression found;

		assert_int_equal(storage_pack(img, dest, all[i], NULL, NULL, &err), 0);
		assert_int_equal(rename(dest, odd), 0);
		assert_int_equal(storage_detect(odd, &found, &err), 0);
		assert_int_equal(found, all[i]);
		if (storage_unpack(odd, out, NULL, &found, NULL, &err) < 0)
			fail_msg("%s: %s", storage_compression_name(all[i]), err.msg);
		assert_int_equal(found, all[i]);
		tu_assert_same_tree(img, out);
		tu_rmtree(out);
		tu_rmtree(odd);
		free(dest);
		free(odd);
		free(out);
	}
	tu_rmtree(dir);
	free(img);
	free(dir);
}

static void pack_unpack_compare(const char *dir, const char *img)
{
	for (size_t i = 0; i < 6; i++) {
		char *dest = tu_join(dir, "ckpt"), *out = tu_join(dir, "out");
		cd_err err = {0};

		if (storage_pack(img, dest, all[i], NULL, NULL, &err) < 0 ||
		    storage_unpack(dest, out, NULL, NULL, NULL, &err) < 0)
			fail_msg("%s: %s", storage_compression_name(all[i]), err.msg);
		tu_assert_same_tree(img, out);
		tu_rmtree(out);
		tu_rmtree(dest);
		free(dest);
		free(out);
	}
}

static void test_empty_image_round_trip(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");

	assert_int_equal(mkdir(img, 0700), 0);
	pack_unpack_compare(dir, img);
	tu_rmtree(dir);
	free(img);
	free(dir);
}

/* Over ustar's 100/155-byte name fields: pax headers carry them. */
static void test_long_names_round_trip(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");
	char name[256], path[1024];

	memset(name, 'n', 200);
	name[200] = '\0';
	snprintf(path, sizeof(path), "%s/%s/%s", name, name, name);
	tu_write(img, path, "deep\n", 5);
	name[0] = 'm';
	tu_write(img, name, "long\n", 5);
	pack_unpack_compare(dir, img);
	tu_rmtree(dir);
	free(img);
	free(dir);
}

static void test_dest_path(void **state)
{
	cd_err err = {0};
	char *p = storage_dest_path("/tmp", "dump-job-x-1", STORAGE_ZSTD, &err);

	assert_string_equal(p, "/tmp/dump-job-x-1.tar.zst");
	free(p);
	p = storage_dest_path("/tmp", "dump-job-x-1", STORAGE_NONE, &err);
	assert_string_equal(p, "/tmp/dump-job-x-1");
	free(p);
}

static void test_pack_sets_owner(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");
	storage_opts o = {.set_owner = true, .owner_uid = 65534, .owner_gid = 65534};

	if (geteuid() != 0) {
		tu_rmtree(dir);
		skip();
	}
	tu_make_small_image(img);
	for (size_t i = 0; i < 6; i++) {
		char *dest = tu_join(dir, "ckpt"), *file = tu_join(dest, "a/one");
		cd_err err = {0};
		struct stat st;

		assert_int_equal(storage_pack(img, dest, all[i], &o, NULL, &err), 0);
		assert_int_equal(stat(all[i] == STORAGE_NONE ? file : dest, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
		assert_int_equal(stat(dest, &st), 0);
		assert_int_equal(st.st_uid, 65534);
		tu_rmtree(dest);
		free(file);
		free(dest);
	}
	tu_rmtree(dir);
	free(img);
	free(dir);
}

static void test_check_writable_as_caller(void **state)
{
	char *dir = tu_tmpdir(), *sub = tu_join(dir, "private"), *gone = tu_join(dir, "gone");
	cd_err err = {0};

	if (geteuid() != 0) {
		tu_rmtree(dir);
		skip();
	}
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(storage_check_writable(sub, 65534, 65534, &err), -EACCES);
	assert_non_null(strstr(err.msg, "not writable by uid 65534"));
	assert_int_equal(storage_check_writable(sub, 0, 0, &err), 0);
	assert_int_equal(chmod(sub, 01777), 0);
	assert_int_equal(storage_check_writable(sub, 65534, 65534, &err), 0);
	assert_int_equal(storage_check_writable(gone, 65534, 65534, &err), -ENOENT);
	tu_rmtree(dir);
	free(gone);
	free(sub);
	free(dir);
}

static void test_bad_level_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "x");
	storage_opts o = {.level = 99};

	tu_make_small_image(img);
	for (size_t i = 2; i < 6; i++) {
		cd_err err = {0};

		assert_int_equal(storage_pack(img, dest, all[i], &o, NULL, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "compression level 99 out of range"));
		assert_int_equal(tu_count_entries(dir), 1);
	}
	tu_rmtree(dir);
	free(dest);
	free(img);
	free(dir);
}

static void test_pack_refuses_existing_dest(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "x.tar");
	cd_err err = {0};
	size_t len;

	tu_make_small_image(img);
	tu_write(dir, "x.tar", "keep", 4);
	assert_int_equal(storage_pack(img, dest, STORAGE_TAR, NULL, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));
	uint8_t *data = tu_read(dest, &len);
	assert_int_equal(len, 4);
	assert_int_equal(tu_count_entries(dir), 2);
	tu_rmtree(dir);
	free(data);
	free(dest);
	free(img);
	free(dir);
}

static void test_size_and_remove(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *file = tu_join(img, "a/one");
	cd_err err = {0};
	uint64_t size = 0;

	tu_make_small_image(img);
	assert_int_equal(storage_size(img, &size, &err), 0);
	assert_int_equal(size, 11 + 12);
	assert_int_equal(storage_size(file, &size, &err), 0);
	assert_int_equal(size, 11);
	assert_int_equal(storage_remove(img, &err), 0);
	assert_int_equal(access(img, F_OK), -1);
	assert_int_equal(storage_remove(img, &err), 0);
	assert_int_equal(storage_size(img, &size, &err), -ENOENT);
	tu_rmtree(dir);
	free(file);
	free(img);
	free(dir);
}

static void count_progress(uint64_t done, uint64_t total, void *userdata)
{
	uint64_t *last = userdata;

	assert_true(done <= total);
	assert_true(done >= *last);
	*last = done;
}

static void test_progress_reaches_total(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "x.tar.lz4");
	char *out = tu_join(dir, "out");
	uint64_t last = 0, size = 0;
	storage_opts o = {.progress = count_progress, .userdata = &last};
	storage_stats st;
	cd_err err = {0};

	tu_make_image(img);
	assert_int_equal(storage_pack(img, dest, STORAGE_LZ4, &o, &st, &err), 0);
	assert_int_equal(last, st.payload_bytes);
	last = 0;
	assert_int_equal(storage_unpack(dest, out, &o, NULL, NULL, &err), 0);
	assert_int_equal(storage_size(dest, &size, &err), 0);
	assert_int_equal(last, size);
	tu_rmtree(dir);
	free(out);
	free(dest);
	free(img);
	free(dir);
}

/* lz4 is one LZ4 frame of independent 1 MiB blocks, compressed in
 * parallel; a block that does not compress is stored as it is, so random
 * pages cost a copy rather than a compression. */
static void test_lz4_stores_incompressible_blocks(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *dest = tu_join(dir, "x.tar.lz4");
	char *out = tu_join(dir, "out");
	const size_t len = 4u << 20;
	uint8_t *buf = calloc(1, len);
	uint64_t x = 88172645463325252ull;
	size_t n = 0, stored = 0, packed = 0;
	cd_err err = {0};

	(void)state;
	assert_non_null(buf);
	tu_write(img, "zero.img", buf, len);
	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	tu_write(img, "random.img", buf, len);
	free(buf);
	assert_int_equal(storage_pack(img, dest, STORAGE_LZ4, NULL, NULL, &err), 0);
	uint8_t *f = tu_read(dest, &n);
	/* magic; FLG: version 1, independent blocks, no checksums; BD: 1 MiB */
	assert_true(n > 11);
	assert_int_equal(f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24, 0x184D2204u);
	assert_int_equal(f[4], 0x60);
	assert_int_equal(f[5], 0x60);
	size_t at = 7;
	for (;;) {
		assert_true(at + 4 <= n);
		uint32_t w = f[at] | f[at + 1] << 8 | f[at + 2] << 16 | (uint32_t)f[at + 3] << 24;
		at += 4;
		if (!w)
			break;
		w & 0x80000000u ? stored++ : packed++;
		assert_true((w & 0x7fffffffu) <= (1u << 20));
		at += w & 0x7fffffffu;
	}
	assert_int_equal(at, n);
	/* the random file's whole blocks stored, the zeros' compressed */
	assert_true(stored >= 3);
	assert_true(packed >= 3);
	assert_int_equal(storage_unpack(dest, out, NULL, NULL, NULL, &err), 0);
	tu_assert_same_tree(img, out);
	free(f);
	tu_rmtree(dir);
	free(out);
	free(dest);
	free(img);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_round_trip),
	    cmocka_unit_test(test_compression_from_suffix),
	    cmocka_unit_test(test_unknown_name_refused),
	    cmocka_unit_test(test_pack_unknown_compression_creates_nothing),
	    cmocka_unit_test(test_round_trip_none),
	    cmocka_unit_test(test_round_trip_tar),
	    cmocka_unit_test(test_round_trip_gzip),
	    cmocka_unit_test(test_round_trip_lz4),
	    cmocka_unit_test(test_lz4_stores_incompressible_blocks),
	    cmocka_unit_test(test_round_trip_zlib),
	    cmocka_unit_test(test_round_trip_zstd),
	    cmocka_unit_test(test_compression_shrinks_zero_pages),
	    cmocka_unit_test(test_deflate_streams_are_standard),
	    cmocka_unit_test(test_none_remove_source_moves),
	    cmocka_unit_test(test_none_across_filesystems),
	    cmocka_unit_test(test_detect_ignores_suffix),
	    cmocka_unit_test(test_empty_image_round_trip),
	    cmocka_unit_test(test_long_names_round_trip),
	    cmocka_unit_test(test_dest_path),
	    cmocka_unit_test(test_pack_sets_owner),
	    cmocka_unit_test(test_check_writable_as_caller),
	    cmocka_unit_test(test_bad_level_refused),
	    cmocka_unit_test(test_pack_refuses_existing_dest),
	    cmocka_unit_test(test_size_and_remove),
	    cmocka_unit_test(test_progress_reaches_total),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
