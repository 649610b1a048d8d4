/* Storage: hostile, corrupted and truncated input is refused with a clear
 * error, nothing is written outside the target, and a failure leaves
 * nothing behind. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "shared/error.h"
#include "storage/storage.h"
#include "test_storage_util.h"

typedef struct crafted {
	const char *name;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 = hard link */
	const char *target;
} crafted;

/* Writes a plain tar holding exactly the given entries, as an attacker would. */
static void craft_tar(const char *path, const crafted *entries, size_t n)
{
	struct archive *a = archive_write_new();

	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		const char *data = "payload\n";

		archive_entry_set_pathname(e, entries[i].name);
		archive_entry_set_perm(e, 0644);
		if (entries[i].type == 0) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, entries[i].target);
		} else {
			archive_entry_set_filetype(e, entries[i].type);
		}
		if (entries[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, entries[i].target);
		if (entries[i].type == AE_IFCHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		if (entries[i].type == AE_IFREG)
			archive_entry_set_size(e, 8);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (entries[i].type == AE_IFREG)
			assert_int_equal(archive_write_data(a, data, 8), 8);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* Unpacks path into <dir>/out and expects a refusal (with code, or any code
 * for 0) naming why; out must not exist afterwards and dir must hold nothing
 * new. */
static void expect_refused(const char *dir, const char *path, int code, const char *why)
{
	char *out = tu_join(dir, "out");
	int before = tu_count_entries(dir);
	cd_err err = {0};

	int r = storage_unpack(path, out, NULL, NULL, NULL, &err);

	if (code)
		assert_int_equal(r, code);
	else
		assert_true(r < 0);
	if (!strstr(err.msg, why))
		fail_msg("error '%s' does not mention '%s'", err.msg, why);
	assert_int_equal(access(out, F_OK), -1);
	assert_int_equal(tu_count_entries(dir), before);
	free(out);
}

static void test_dotdot_refused(void **state)
{
	char *dir = tu_tmpdir(), *inner = tu_join(dir, "inner");
	char *tar = tu_join(inner, "evil.tar"), *escape = tu_join(inner, "escape");
	const crafted first[] = {{"ok", AE_IFREG, NULL}, {"../escape", AE_IFREG, NULL}};
	const crafted nested[] = {{"a/../../escape", AE_IFREG, NULL}};

	assert_int_equal(mkdir(inner, 0700), 0);
	craft_tar(tar, first, 2);
	expect_refused(inner, tar, -EPERM, "'..' refused");
	assert_int_equal(access(escape, F_OK), -1);
	assert_int_equal(tu_count_entries(dir), 1);
	unlink(tar);
	craft_tar(tar, nested, 1);
	expect_refused(inner, tar, -EPERM, "'..' refused");
	assert_int_equal(access(escape, F_OK), -1);
	assert_int_equal(tu_count_entries(dir), 1);
	tu_rmtree(dir);
	free(escape);
	free(tar);
	free(inner);
	free(dir);
}

static void test_absolute_path_refused(void **state)
{
	char *dir = tu_tmpdir(), *tar = tu_join(dir, "evil.tar"), *abs = tu_join(dir, "abs");
	char *target = tu_join(abs, "planted");
	const crafted entries[] = {{target, AE_IFREG, NULL}};

	craft_tar(tar, entries, 1);
	expect_refused(dir, tar, -EPERM, "absolute path refused");
	assert_int_equal(access(abs, F_OK), -1);
	tu_rmtree(dir);
	free(target);
	free(abs);
	free(tar);
	free(dir);
}

static void test_symlink_refused(void **state)
{
	char *dir = tu_tmpdir(), *tar = tu_join(dir, "evil.tar"),
	     *outside = tu_join(dir, "outside");
	const crafted entries[] = {{"link", AE_IFLNK, outside}, {"link/planted", AE_IFREG, NULL}};

	assert_int_equal(mkdir(outside, 0700), 0);
	craft_tar(tar, entries, 2);
	expect_refused(dir, tar, -EPERM, "symbolic link refused");
	assert_int_equal(tu_count_entries(outside), 0);
	tu_rmtree(dir);
	free(outside);
	free(tar);
	free(dir);
}

static void test_hardlink_and_device_refused(void **state)
{
	char *dir = tu_tmpdir(), *tar = tu_join(dir, "evil.tar");
	const crafted hard[] = {{"ok", AE_IFREG, NULL}, {"passwd", 0, "/etc/passwd"}};
	const crafted dev[] = {{"null", AE_IFCHR, NULL}};

	craft_tar(tar, hard, 2);
	expect_refused(dir, tar, -EPERM, "hard link refused");
	unlink(tar);
	craft_tar(tar, dev, 1);
	expect_refused(dir, tar, -EPERM, "special file refused");
	tu_rmtree(dir);
	free(tar);
	free(dir);
}

static void test_foreign_tar_without_manifest_accepted(void **state)
{
	char *dir = tu_tmpdir(), *tar = tu_join(dir, "plain.tar"), *out = tu_join(dir, "out");
	char *file = tu_join(out, "d/f");
	const crafted entries[] = {{"./d/", AE_IFDIR, NULL}, {"./d/f", AE_IFREG, NULL}};
	cd_err err = {0};
	size_t len;

	craft_tar(tar, entries, 2);
	assert_int_equal(storage_unpack(tar, out, NULL, NULL, NULL, &err), 0);
	uint8_t *data = tu_read(file, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(data, "payload\n", 8);
	assert_int_equal(tu_mode(file), 0600);
	tu_rmtree(dir);
	free(data);
	free(file);
	free(out);
	free(tar);
	free(dir);
}

static void test_not_an_archive_refused(void **state)
{
	char *dir = tu_tmpdir(), *txt = tu_join(dir, "notes.tar.gz"), *empty = tu_join(dir, "e");
	char *missing = tu_join(dir, "missing.tar");

	tu_write(dir, "notes.tar.gz", "just some text, not an archive\n", 31);
	tu_write(dir, "e", "", 0);
	expect_refused(dir, txt, -EINVAL, "not a checkpoint image");
	expect_refused(dir, empty, -EINVAL, "not a checkpoint image");
	expect_refused(dir, missing, -ENOENT, "missing.tar");
	tu_rmtree(dir);
	free(missing);
	free(empty);
	free(txt);
	free(dir);
}

/* Compressible text, so compressed streams hold real compressed blocks. */
static void make_text_image(const char *dir)
{
	size_t len = 256 << 10;
	char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (i * 7 + i / 97) % 26);
	tu_write(dir, "text.img", buf, len);
	tu_write(dir, "sub/more.img", buf, len / 2);
	free(buf);
}

static char *pack_to(const char *dir, const char *img, storage_compression c)
{
	char *dest = NULL;
	cd_err err = {0};

	assert_true(asprintf(&dest, "%s/ckpt%s", dir, storage_compression_suffix(c)) > 0);
	if (storage_pack(img, dest, c, NULL, NULL, &err) < 0)
		fail_msg("pack: %s", err.msg);
	return dest;
}

static void overwrite(const char *path, off_t off, size_t n)
{
	uint8_t junk[64];
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	assert_true(n <= sizeof(junk));
	for (size_t i = 0; i < n; i++)
		junk[i] = (uint8_t)(0x5a ^ (i * 31));
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, n, off), (ssize_t)n);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_corrupted_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");

	make_text_image(img);
	for (storage_compression c = STORAGE_TAR; c <= STORAGE_ZSTD; c++) {
		char *dest = pack_to(dir, img, c);
		cd_err err = {0};
		char *out = tu_join(dir, "out");

		/* tar: a header (its checksum no longer matches); compressed:
		 * the middle of the stream */
		overwrite(dest, c == STORAGE_TAR ? 1024 + 100 : file_size(dest) / 2, 48);
		assert_true(storage_unpack(dest, out, NULL, NULL, NULL, &err) < 0);
		if (!strstr(err.msg, "unpack"))
			fail_msg("%s: unclear error '%s'", storage_compression_name(c), err.msg);
		assert_int_equal(access(out, F_OK), -1);
		assert_int_equal(tu_count_entries(dir), 2);
		unlink(dest);
		free(out);
		free(dest);
	}
	tu_rmtree(dir);
	free(img);
	free(dir);
}

/* Random pages are stored, not compressed: a flipped byte there passes
 * every format's own checks and only the CRC trailer catches it. */
static void test_flipped_byte_in_data_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");
	size_t len = 1 << 20;
	uint8_t *buf = malloc(len);
	uint64_t x = 88172645463325252ull;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	tu_write(img, "pages.img", buf, len);
	for (storage_compression c = STORAGE_TAR; c <= STORAGE_ZSTD; c++) {
		char *dest = pack_to(dir, img, c);

		overwrite(dest, file_size(dest) * 6 / 10, 4);
		expect_refused(dir, dest, 0, "corrupt");
		unlink(dest);
		free(dest);
	}
	tu_rmtree(dir);
	free(buf);
	free(img);
	free(dir);
}

static void test_truncated_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");

	make_text_image(img);
	for (storage_compression c = STORAGE_TAR; c <= STORAGE_ZSTD; c++) {
		char *dest = pack_to(dir, img, c);
		off_t size = file_size(dest);

		for (int cut = 1; cut <= 3; cut++) {
			assert_int_equal(truncate(dest, size * (4 - cut) / 4 - 7 * cut), 0);
			expect_refused(dir, dest, 0, "runcated");
		}
		unlink(dest);
		free(dest);
	}
	tu_rmtree(dir);
	free(img);
	free(dir);
}

/* A tar cut exactly between two entries is still a valid tar; the manifest
 * catches it. Cuts inside an entry are caught by tar itself. */
static void test_tar_cut_at_entry_boundary_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img");

	tu_make_small_image(img);
	char *dest = pack_to(dir, img, STORAGE_TAR);
	off_t size = file_size(dest);

	/* the last 1024 bytes are the end-of-archive blocks */
	for (off_t cut = size - 1024 - 512; cut > 0; cut -= 512) {
		assert_int_equal(truncate(dest, cut), 0);
		expect_refused(dir, dest, 0, "runcated");
	}
	tu_rmtree(dir);
	free(dest);
	free(img);
	free(dir);
}

struct sabotage {
	const char *victim;
	bool done;
};

static void shrink_victim(uint64_t done, uint64_t total, void *userdata)
{
	struct sabotage *s = userdata;

	if (!s->done)
		assert_int_equal(truncate(s->victim, 10), 0);
	s->done = true;
}

static void test_pack_failure_leaves_nothing(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *victim = tu_join(img, "text.img");

	for (storage_compression c = STORAGE_NONE; c <= STORAGE_ZSTD; c++) {
		struct sabotage s = {.victim = victim};
		storage_opts o = {.progress = shrink_victim, .userdata = &s};
		char *dest = NULL;
		cd_err err = {0};

		make_text_image(img);
		/* larger than the read-ahead, so the reader meets the cut */
		assert_int_equal(truncate(victim, 64 << 20), 0);
		assert_true(asprintf(&dest, "%s/ckpt%s", dir, storage_compression_suffix(c)) > 0);
		int r = storage_pack(img, dest, c, &o, NULL, &err);
		assert_int_equal(r, -EIO);
		if (!strstr(err.msg, "text.img"))
			fail_msg("%s: error '%s' does not name the file",
			         storage_compression_name(c), err.msg);
		assert_int_equal(tu_count_entries(dir), 1);
		tu_rmtree(img);
		free(dest);
	}
	tu_rmtree(dir);
	free(victim);
	free(img);
	free(dir);
}

/* A full disk, simulated with RLIMIT_FSIZE (writes past it fail with
 * EFBIG): both pack and unpack fail cleanly in the writer thread. */
static void test_disk_full_leaves_nothing(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *out = tu_join(dir, "out");
	struct rlimit old, small;

	tu_make_image(img);
	char *good = pack_to(dir, img, STORAGE_TAR);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = (struct rlimit){.rlim_cur = 1 << 20, .rlim_max = old.rlim_max};
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (storage_compression c = STORAGE_NONE; c <= STORAGE_ZSTD; c++) {
		char *dest = tu_join(dir, "ckpt");
		cd_err err = {0};

		assert_int_equal(storage_pack(img, dest, c, NULL, NULL, &err), -EFBIG);
		if (!strstr(err.msg, "File too large"))
			fail_msg("%s: %s", storage_compression_name(c), err.msg);
		assert_int_equal(tu_count_entries(dir), 2);
		free(dest);
	}
	expect_refused(dir, good, -EFBIG, "File too large");
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	tu_rmtree(dir);
	free(good);
	free(out);
	free(img);
	free(dir);
}

static void test_pack_refuses_special_files(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *fifo = tu_join(img, "a/pipe");
	char *dest = tu_join(dir, "x.tar"), *link = tu_join(img, "link");
	cd_err err = {0};

	tu_make_small_image(img);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(storage_pack(img, dest, STORAGE_TAR, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a/pipe: not a regular file or directory"));
	assert_int_equal(tu_count_entries(dir), 1);
	unlink(fifo);
	assert_int_equal(symlink("/etc/passwd", link), 0);
	assert_int_equal(storage_pack(img, dest, STORAGE_NONE, NULL, NULL, &err), -EINVAL);
	assert_int_equal(tu_count_entries(dir), 1);
	tu_rmtree(dir);
	free(link);
	free(dest);
	free(fifo);
	free(img);
	free(dir);
}

static void test_missing_parent_refused(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *gone = tu_join(dir, "gone");
	char *dest = tu_join(gone, "x.tar"), *out = tu_join(gone, "out");
	cd_err err = {0};

	tu_make_small_image(img);
	assert_int_equal(storage_pack(img, dest, STORAGE_TAR, NULL, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, gone));
	assert_null(strstr(err.msg, ".tmp-"));
	char *good = pack_to(dir, img, STORAGE_TAR);
	assert_int_equal(storage_unpack(good, out, NULL, NULL, NULL, &err), -ENOENT);
	assert_null(strstr(err.msg, ".tmp-"));
	assert_int_equal(tu_count_entries(dir), 2);
	tu_rmtree(dir);
	free(good);
	free(out);
	free(dest);
	free(gone);
	free(img);
	free(dir);
}

static void test_compressed_non_tar_refused(void **state)
{
	char *dir = tu_tmpdir(), *path = tu_join(dir, "notes.gz");
	gzFile gz = gzopen(path, "wb");

	assert_non_null(gz);
	assert_int_equal(gzputs(gz, "not a tar inside\n"), 17);
	assert_int_equal(gzclose(gz), Z_OK);
	expect_refused(dir, path, 0, "notes.gz");
	tu_rmtree(dir);
	free(path);
	free(dir);
}

static void test_unpack_refuses_existing_dest(void **state)
{
	char *dir = tu_tmpdir(), *img = tu_join(dir, "img"), *out = tu_join(dir, "out");
	cd_err err = {0};

	tu_make_small_image(img);
	char *dest = pack_to(dir, img, STORAGE_GZIP);
	assert_int_equal(mkdir(out, 0755), 0);
	assert_int_equal(storage_unpack(dest, out, NULL, NULL, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_equal(tu_count_entries(out), 0);
	tu_rmtree(dir);
	free(dest);
	free(out);
	free(img);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dotdot_refused),
	    cmocka_unit_test(test_absolute_path_refused),
	    cmocka_unit_test(test_symlink_refused),
	    cmocka_unit_test(test_hardlink_and_device_refused),
	    cmocka_unit_test(test_foreign_tar_without_manifest_accepted),
	    cmocka_unit_test(test_not_an_archive_refused),
	    cmocka_unit_test(test_corrupted_refused),
	    cmocka_unit_test(test_flipped_byte_in_data_refused),
	    cmocka_unit_test(test_truncated_refused),
	    cmocka_unit_test(test_tar_cut_at_entry_boundary_refused),
	    cmocka_unit_test(test_pack_failure_leaves_nothing),
	    cmocka_unit_test(test_disk_full_leaves_nothing),
	    cmocka_unit_test(test_pack_refuses_special_files),
	    cmocka_unit_test(test_missing_parent_refused),
	    cmocka_unit_test(test_compressed_non_tar_refused),
	    cmocka_unit_test(test_unpack_refuses_existing_dest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
