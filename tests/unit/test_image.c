/* The image codec: manifest round trip, refusal of foreign, corrupt and
 * truncated images, and the page-file checksum. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/image.h"

static void make_image(struct cd_image *img)
{
	memset(img, 0, sizeof(*img));
	img->version = CD_IMAGE_VERSION;
	strcpy(img->kernel, "6.18.0-test");
	img->root = 42;
	img->vdso_size[CD_VMA_VDSO] = 8192;
	img->ntasks = 1;
	img->tasks = calloc(1, sizeof(struct cd_task));
	struct cd_task *t = &img->tasks[0];
	t->pid = 42;
	t->ppid = 1;
	t->pgid = t->sid = 42;
	strcpy(t->comm, "counter");
	strcpy(t->pages_file, "pages-42.img");
	t->regs.rip = 0x401000;
	t->regs.rax = (unsigned long long)-516;
	t->regs.fs_base = 0x7f0000001000ULL;
	t->xstate_len = 4;
	t->xstate = malloc(4);
	memcpy(t->xstate, "\x01\x02\xfe\xff", 4);
	t->nvmas = 2;
	t->vmas = calloc(2, sizeof(struct cd_vma));
	t->vmas[0] = (struct cd_vma){
	    .start = 0x10000, .end = 0x14000, .prot = PROT_READ | PROT_WRITE, .kind = CD_VMA_ANON};
	t->vmas[0].nruns = 2;
	t->vmas[0].runs = calloc(2, sizeof(struct cd_run));
	t->vmas[0].runs[0] = (struct cd_run){0, 2, CD_RUN_DATA};
	t->vmas[0].runs[1] = (struct cd_run){2, 1, CD_RUN_ZERO};
	t->vmas[1] = (struct cd_vma){
	    .start = 0x20000, .end = 0x21000, .prot = PROT_READ, .kind = CD_VMA_FILE};
	t->vmas[1].path = strdup("/usr/lib/libc.so.6");
	t->pages_size = 2 * CD_PAGE_SIZE;
	t->pages_csum = 0x1234;
	t->nfds = 1;
	t->fds = calloc(1, sizeof(struct cd_fd));
	t->fds[0] = (struct cd_fd){.fd = 7, .kind = CD_FD_REG, .flags = 02, .pos = 4097, .obj = 3};
	t->fds[0].path = strdup("/tmp/x");
	t->cwd = strdup("/tmp");
	t->root = strdup("/");
	t->mm.exe = strdup("/bin/counter");
	t->mm.auxv_len = 2;
	t->mm.auxv[0] = 6;
	t->mm.auxv[1] = 4096;
	t->act[9].handler = 0xdead;
	t->uid[0] = 1000;
	t->rlim[7][0] = 1024;
	t->itimer[0][1] = 10000;
	img->npipes = 1;
	img->pipes = calloc(1, sizeof(struct cd_pipe));
	img->pipes[0].id = 99;
	img->pipes[0].data = strdup("unread");
	img->pipes[0].len = 6;
}

static json_t *encoded(void)
{
	struct cd_image img;
	cd_err err = {0};

	make_image(&img);
	json_t *j = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_non_null(j);
	return j;
}

static void test_round_trip(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	const struct cd_task *t = &img.tasks[0];
	assert_int_equal(img.root, 42);
	assert_string_equal(img.kernel, "6.18.0-test");
	assert_int_equal(img.vdso_size[CD_VMA_VDSO], 8192);
	assert_string_equal(t->comm, "counter");
	assert_int_equal(t->regs.rip, 0x401000);
	assert_int_equal((long)t->regs.rax, -516);
	assert_int_equal(t->regs.fs_base, 0x7f0000001000ULL);
	assert_int_equal(t->xstate_len, 4);
	assert_memory_equal(t->xstate, "\x01\x02\xfe\xff", 4);
	assert_int_equal(t->nvmas, 2);
	assert_int_equal(t->vmas[0].nruns, 2);
	assert_int_equal(t->vmas[0].runs[1].src, CD_RUN_ZERO);
	assert_string_equal(t->vmas[1].path, "/usr/lib/libc.so.6");
	assert_int_equal(t->fds[0].pos, 4097);
	assert_string_equal(t->fds[0].path, "/tmp/x");
	assert_string_equal(t->mm.exe, "/bin/counter");
	assert_int_equal(t->mm.auxv_len, 2);
	assert_int_equal(t->act[9].handler, 0xdead);
	assert_int_equal(t->uid[0], 1000);
	assert_int_equal(t->rlim[7][0], 1024);
	assert_int_equal(t->itimer[0][1], 10000);
	assert_int_equal(img.npipes, 1);
	assert_memory_equal(img.pipes[0].data, "unread", 6);
	cd_image_free(&img);
}

static void expect_refused(json_t *j, const char *needle)
{
	struct cd_image img;
	cd_err err = {0};

	assert_true(cd_image_from_json(j, &img, &err) < 0);
	cd_image_free(&img);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	json_decref(j);
}

static void test_refuses_other_version(void **state)
{
	json_t *j = encoded();

	json_object_set_new(j, "version", json_integer(CD_IMAGE_VERSION + 1));
	expect_refused(j, "version");
}

static void test_refuses_other_format(void **state)
{
	json_t *j = encoded();

	json_object_set_new(j, "format", json_string("criu"));
	expect_refused(j, "not a cedana image");
}

static void test_refuses_runs_not_matching_page_file(void **state)
{
	json_t *j = encoded();
	json_t *t = json_array_get(json_object_get(j, "tasks"), 0);

	json_object_set_new(t, "pages_size", json_integer(3 * CD_PAGE_SIZE));
	expect_refused(j, "page file");
}

static void test_refuses_run_outside_mapping(void **state)
{
	json_t *j = encoded();
	json_t *t = json_array_get(json_object_get(j, "tasks"), 0);
	json_t *runs = json_object_get(json_array_get(json_object_get(t, "vmas"), 0), "runs");

	json_array_set_new(runs, 1, json_pack("[i,i,i]", 2, 9, 1));
	expect_refused(j, "outside its mapping");
}

static void test_refuses_page_file_path(void **state)
{
	json_t *j = encoded();
	json_t *t = json_array_get(json_object_get(j, "tasks"), 0);

	json_object_set_new(t, "pages_file", json_string("../../etc/passwd"));
	expect_refused(j, "page file name");
}

/* Every id of the four: a short array must not leave some of them to chance. */
static void test_refuses_short_ids(void **state)
{
	json_t *j = encoded();
	json_t *t = json_array_get(json_object_get(j, "tasks"), 0);

	json_object_set_new(t, "gids", json_pack("[i]", 0));
	expect_refused(j, "bad array \"gids\"");
	j = encoded();
	t = json_array_get(json_object_get(j, "tasks"), 0);
	json_object_set_new(t, "uids", json_pack("[i,i]", 1000, 1000));
	expect_refused(j, "bad array \"uids\"");
}

static int write_file(int dirfd, const char *name, const void *buf, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	ssize_t n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static void test_refuses_truncated_manifest(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	json_t *j = encoded();
	char *s = json_dumps(j, JSON_COMPACT);
	struct cd_image img;
	cd_err err = {0};

	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(write_file(dirfd, CD_IMAGE_MANIFEST, s, strlen(s) / 2), 0);
	assert_true(cd_image_read_manifest(dirfd, &img, &err) < 0);
	assert_non_null(strstr(err.msg, "corrupt or truncated"));
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	close(dirfd);
	rmdir(dir);
	free(s);
	json_decref(j);
}

static void test_page_file_checks(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	static uint8_t pages[2 * 4096];
	struct cd_image img;
	struct cd_csum c;
	cd_err err = {0};

	memset(pages, 0xab, sizeof(pages));
	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	make_image(&img);
	cd_csum_init(&c);
	cd_csum_update(&c, pages, sizeof(pages));
	img.tasks[0].pages_csum = cd_csum_final(&c);
	assert_int_equal(write_file(dirfd, "pages-42.img", pages, sizeof(pages)), 0);
	assert_int_equal(cd_image_verify_pages(&img, dirfd, NULL, &err), 0);
	pages[5000] ^= 1;
	assert_int_equal(write_file(dirfd, "pages-42.img", pages, sizeof(pages)), 0);
	assert_true(cd_image_verify_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "checksum"));
	assert_int_equal(write_file(dirfd, "pages-42.img", pages, 4096), 0);
	assert_true(cd_image_verify_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "truncated"));
	cd_image_free(&img);
	unlinkat(dirfd, "pages-42.img", 0);
	close(dirfd);
	rmdir(dir);
}

static void test_checksum_incremental(void **state)
{
	uint8_t buf[1000];
	struct cd_csum a, b;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	cd_csum_init(&a);
	cd_csum_update(&a, buf, sizeof(buf));
	cd_csum_init(&b);
	cd_csum_update(&b, buf, 3);
	cd_csum_update(&b, buf + 3, 500);
	cd_csum_update(&b, buf + 503, sizeof(buf) - 503);
	assert_int_equal(cd_csum_final(&a), cd_csum_final(&b));
	buf[999] ^= 0x80;
	cd_csum_init(&b);
	cd_csum_update(&b, buf, sizeof(buf));
	assert_int_not_equal(cd_csum_final(&a), cd_csum_final(&b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refuses_other_version),
	    cmocka_unit_test(test_refuses_other_format),
	    cmocka_unit_test(test_refuses_runs_not_matching_page_file),
	    cmocka_unit_test(test_refuses_run_outside_mapping),
	    cmocka_unit_test(test_refuses_page_file_path),
	    cmocka_unit_test(test_refuses_short_ids),
	    cmocka_unit_test(test_refuses_truncated_manifest),
	    cmocka_unit_test(test_page_file_checks),
	    cmocka_unit_test(test_checksum_incremental),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
