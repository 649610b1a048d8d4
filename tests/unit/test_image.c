/* The image codec: manifest round trip, refusal of foreign, corrupt and
 * truncated images, and the page-file checksum. */
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/image-fields.h"
#include "engine/image.h"
#include "engine/pageio.h"
#include "engine/internal.h"

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
	t->new_pgid = t->new_sid = 42;
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
	t->vmas[0] = (struct cd_vma){.start = 0x10000,
	                             .end = 0x14000,
	                             .prot = PROT_READ | PROT_WRITE,
	                             .kind = CD_VMA_ANON,
	                             .flags = CD_VMF_LOCKED | CD_VMF_LOCKONFAULT |
	                                      CD_VMF_WIPEONFORK | CD_VMF_NOHUGEPAGE};
	t->vmas[0].nruns = 2;
	t->vmas[0].runs = calloc(2, sizeof(struct cd_run));
	t->vmas[0].runs[0] = (struct cd_run){0, 2, CD_RUN_DATA};
	t->vmas[0].runs[1] = (struct cd_run){2, 1, CD_RUN_ZERO};
	t->vmas[1] = (struct cd_vma){
	    .start = 0x20000, .end = 0x21000, .prot = PROT_READ, .kind = CD_VMA_FILE};
	t->vmas[1].path = strdup("/usr/lib/libc.so.6");
	t->pages_size = 2 * CD_PAGE_SIZE;
	t->pages_csum = 0x1234;
	t->nfds = 4;
	t->fds = calloc(4, sizeof(struct cd_fd));
	t->fds[0] = (struct cd_fd){.fd = 7,
	                           .kind = CD_FD_REG,
	                           .flags = 02,
	                           .pos = 4097,
	                           .obj = 3,
	                           .own_type = 1,
	                           .own_pid = 42,
	                           .sig = 10,
	                           .std = -1};
	t->fds[0].path = strdup("/tmp/x");
	/* the file the locks are held through */
	t->fds[1] = (struct cd_fd){.fd = 9, .kind = CD_FD_REG, .flags = 02, .obj = 4, .std = -1};
	t->fds[1].path = strdup("/tmp/locked");
	t->fds[3] = (struct cd_fd){
	    .fd = 13, .kind = CD_FD_DELETED, .flags = 0, .pos = 2, .obj = 6, .std = -1};
	t->fds[2] = (struct cd_fd){
	    .fd = 12, .kind = CD_FD_MEMFD, .flags = 02, .pos = 5, .obj = 5, .std = -1};
	t->cwd = strdup("/tmp");
	t->root = strdup("/");
	t->mm.exe = strdup("/bin/counter");
	t->mm.auxv_len = 2;
	t->mm.auxv[0] = 6;
	t->mm.auxv[1] = 4096;
	t->act[9].handler = 0xdead;
	t->uid[0] = 1000;
	t->rlim[7][0] = 1024;
	t->mlock_future = CD_MLOCK_FUTURE_ONFAULT;
	t->itimer[0][1] = 10000;
	t->nthreads = 1;
	t->threads = calloc(1, sizeof(struct cd_thread));
	struct cd_thread *th = &t->threads[0];
	th->tid = 4242;
	strcpy(th->comm, "worker");
	th->regs.rip = 0x401234;
	th->regs.fs_base = 0x7f0000002000ULL;
	th->xstate_len = 2;
	th->xstate = malloc(2);
	memcpy(th->xstate, "\x07\x08", 2);
	th->blocked = 1ULL << 9;
	th->ss_sp = 0x50000;
	th->ss_size = 65536;
	th->npending = 1;
	th->pending = calloc(1, 128);
	th->pending[0][0] = 10; /* si_signo SIGUSR1 */
	th->rseq_addr = 0x7f0000002100ULL;
	th->rseq_len = 32;
	th->rseq_sig = 0x53053053;
	th->robust_head = 0x7f00000020e0ULL;
	th->robust_len = 24;
	th->clear_tid = 0x7f00000022d0ULL;
	th->nice = 5;
	th->sched_policy = 3; /* SCHED_BATCH */
	th->timer_slack_ns = 50000;
	th->affinity[0] = 2;
	th->mempolicy = (struct cd_mempolicy){.mode = 1 /* MPOL_PREFERRED */, .nodes = {1}};
	/* NUMA: the task's policy, and the first mapping's own */
	t->mempolicy = (struct cd_mempolicy){
	    .mode = 3, /* MPOL_INTERLEAVE, relative */
	    .flags = 1 << 14,
	    .nodes = {0x5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1ULL << 63}};
	t->seccomp_mode = 2;
	t->nfilters = 2;
	t->filters = calloc(2, sizeof(struct cd_seccomp_filter));
	t->filters[0] = (struct cd_seccomp_filter){.flags = 0, .ninsns = 1};
	t->filters[0].insns = calloc(1, sizeof(uint64_t));
	t->filters[0].insns[0] = 0x7fff000000000006ULL; /* ret ALLOW */
	t->filters[1] = (struct cd_seccomp_filter){.flags = 2 /* LOG */, .ninsns = 2};
	t->filters[1].insns = calloc(2, sizeof(uint64_t));
	t->filters[1].insns[0] = 0x0000000000000020ULL;
	t->filters[1].insns[1] = 0x7fff000000000006ULL;
	t->stop_sig = SIGTSTP;
	t->stop_notify = true;
	t->nvpols = 1;
	t->vpols = calloc(1, sizeof(struct cd_vma_policy));
	t->vpols[0] = (struct cd_vma_policy){
	    .start = 0x20000, .end = 0x21000, .pol = {.mode = 2 /* MPOL_BIND */, .nodes = {1}}};
	t->ntimers = 2;
	t->timers = calloc(2, sizeof(struct cd_posix_timer));
	t->timers[0] = (struct cd_posix_timer){.id = 7,
	                                       .tid = 4242, /* aimed at the thread */
	                                       .clock = CLOCK_MONOTONIC,
	                                       .signo = 34,
	                                       .notify = SIGEV_SIGNAL | SIGEV_THREAD_ID,
	                                       .value = 0xfeedface12345678ULL,
	                                       .insec = 10000000,
	                                       .vsec = 3,
	                                       .vnsec = 999999999};
	t->timers[1] = (struct cd_posix_timer){.id = 2, .clock = -6, .notify = SIGEV_NONE};
	t->nlocks = 2;
	t->locks = calloc(2, sizeof(struct cd_lock));
	t->locks[0] = (struct cd_lock){
	    .fd = 9, .kind = CD_LOCK_POSIX, .type = F_WRLCK, .start = 20, .len = 10};
	t->locks[1] = (struct cd_lock){.fd = 9, .kind = CD_LOCK_FLOCK, .type = F_RDLCK};
	img->npipes = 1;
	img->pipes = calloc(1, sizeof(struct cd_pipe));
	img->pipes[0].id = 99;
	img->pipes[0].data = strdup("unread");
	img->pipes[0].len = 6;
	img->pipes[0].size = 8192;
	/* 0: contents in the manifest (an older image); 1: in its file; 2:
	 * another open file of 1; 3 and 4: memfds only mapped (no open file) */
	img->nmemfds = 5;
	img->memfds = calloc(5, sizeof(struct cd_memfd));
	img->memfds[0] = (struct cd_memfd){
	    .obj = 5, .seals = 0x6, .mode = 0640, .uid = 1000, .gid = 100, .len = 6};
	img->memfds[0].name = strdup("buf");
	img->memfds[0].data = strdup("memfd!");
	img->memfds[1] = (struct cd_memfd){.obj = 7,
	                                   .of = 1,
	                                   .mode = 0600,
	                                   .len = 70000,
	                                   .csum = 0x8000000000000001ULL,
	                                   .shmid = 77};
	img->memfds[1].name = strdup("big");
	img->memfds[2] = (struct cd_memfd){.obj = 8, .of = 1, .mode = 0600};
	img->memfds[2].name = strdup("big");
	img->memfds[3] = (struct cd_memfd){.obj = -1,
	                                   .of = 3,
	                                   .seals = 0x1f,
	                                   .mode = 0604,
	                                   .uid = 1000,
	                                   .gid = 100,
	                                   .len = 12388,
	                                   .csum = 42,
	                                   .shmid = 88};
	img->memfds[3].name = strdup("mapped");
	img->memfds[4] = (struct cd_memfd){.obj = -1, .of = 4, .mode = 0600, .shmid = 89};
	img->memfds[4].name = strdup("mapped2");
	img->ndeleted = 3;
	img->deleted = calloc(3, sizeof(struct cd_deleted));
	img->deleted[0] =
	    (struct cd_deleted){.obj = 6, .mode = 0604, .uid = 1000, .gid = 100, .len = 4};
	img->deleted[0].path = strdup("/tmp/gone");
	img->deleted[0].data = strdup("gone");
	img->deleted[1] = (struct cd_deleted){.obj = 9, .of = 0, .mode = 0604};
	img->deleted[1].path = strdup("/tmp/gone");
	/* a file only mapped: no open file */
	img->deleted[2] = (struct cd_deleted){.obj = -1, .of = 2, .mode = 0600, .len = 0};
	img->deleted[2].path = strdup("/tmp/ghost");
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
	assert_int_equal(t->vmas[0].flags, CD_VMF_LOCKED | CD_VMF_LOCKONFAULT | CD_VMF_WIPEONFORK |
	                                       CD_VMF_NOHUGEPAGE);
	assert_int_equal(t->vmas[1].flags, 0);
	assert_int_equal(t->mlock_future, CD_MLOCK_FUTURE_ONFAULT);
	assert_string_equal(t->vmas[1].path, "/usr/lib/libc.so.6");
	assert_int_equal(t->fds[0].pos, 4097);
	assert_string_equal(t->fds[0].path, "/tmp/x");
	assert_int_equal(t->fds[0].own_type, 1);
	assert_int_equal(t->fds[0].own_pid, 42);
	assert_int_equal(t->fds[0].sig, 10);
	assert_int_equal(t->fds[0].std, -1);
	assert_string_equal(t->mm.exe, "/bin/counter");
	assert_int_equal(t->mm.auxv_len, 2);
	assert_int_equal(t->act[9].handler, 0xdead);
	assert_int_equal(t->uid[0], 1000);
	assert_int_equal(t->rlim[7][0], 1024);
	assert_int_equal(t->itimer[0][1], 10000);
	assert_int_equal(t->nthreads, 1);
	const struct cd_thread *th = &t->threads[0];
	assert_int_equal(th->tid, 4242);
	assert_string_equal(th->comm, "worker");
	assert_int_equal(th->regs.rip, 0x401234);
	assert_int_equal(th->regs.fs_base, 0x7f0000002000ULL);
	assert_int_equal(th->xstate_len, 2);
	assert_memory_equal(th->xstate, "\x07\x08", 2);
	assert_int_equal(th->blocked, 1ULL << 9);
	assert_int_equal(th->ss_sp, 0x50000);
	assert_int_equal(th->ss_size, 65536);
	assert_int_equal(th->npending, 1);
	assert_int_equal(th->pending[0][0], 10);
	assert_int_equal(th->rseq_addr, 0x7f0000002100ULL);
	assert_int_equal(th->rseq_len, 32);
	assert_int_equal(th->rseq_sig, 0x53053053);
	assert_int_equal(th->robust_head, 0x7f00000020e0ULL);
	assert_int_equal(th->robust_len, 24);
	assert_int_equal(th->clear_tid, 0x7f00000022d0ULL);
	assert_int_equal(th->nice, 5);
	assert_int_equal(th->sched_policy, 3);
	assert_int_equal(th->timer_slack_ns, 50000);
	assert_int_equal(th->affinity[0], 2);
	assert_int_equal(th->mempolicy.mode, 1);
	assert_int_equal(th->mempolicy.nodes[0], 1);
	assert_int_equal(t->mempolicy.mode, 3);
	assert_int_equal(t->mempolicy.flags, 1 << 14);
	assert_int_equal(t->mempolicy.nodes[0], 0x5);
	assert_int_equal(t->mempolicy.nodes[15], 1ULL << 63);
	assert_int_equal(t->seccomp_mode, 2);
	assert_int_equal(t->nfilters, 2);
	assert_int_equal(t->filters[0].ninsns, 1);
	assert_int_equal(t->filters[0].insns[0], 0x7fff000000000006ULL);
	assert_int_equal(t->filters[1].flags, 2);
	assert_int_equal(t->filters[1].ninsns, 2);
	assert_int_equal(t->filters[1].insns[0], 0x20);
	assert_int_equal(t->stop_sig, SIGTSTP);
	assert_true(t->stop_notify);
	assert_int_equal(t->nvpols, 1);
	assert_int_equal(t->vpols[0].start, 0x20000);
	assert_int_equal(t->vpols[0].end, 0x21000);
	assert_int_equal(t->vpols[0].pol.mode, 2);
	assert_int_equal(t->vpols[0].pol.nodes[0], 1);
	assert_int_equal(t->ntimers, 2);
	assert_int_equal(t->timers[0].id, 7);
	assert_int_equal(t->timers[0].clock, CLOCK_MONOTONIC);
	assert_int_equal(t->timers[0].signo, 34);
	assert_int_equal(t->timers[0].notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
	assert_int_equal(t->timers[0].value, 0xfeedface12345678ULL);
	assert_int_equal(t->timers[0].insec, 10000000);
	assert_int_equal(t->timers[0].vsec, 3);
	assert_int_equal(t->timers[0].vnsec, 999999999);
	assert_int_equal(t->timers[0].tid, 4242);
	assert_int_equal(t->timers[1].tid, 42);
	assert_int_equal(t->timers[1].clock, -6);
	assert_int_equal(t->timers[1].notify, SIGEV_NONE);
	assert_int_equal(t->nlocks, 2);
	assert_int_equal(t->locks[0].fd, 9);
	assert_int_equal(t->locks[0].kind, CD_LOCK_POSIX);
	assert_int_equal(t->locks[0].type, F_WRLCK);
	assert_int_equal(t->locks[0].start, 20);
	assert_int_equal(t->locks[0].len, 10);
	assert_int_equal(t->locks[1].kind, CD_LOCK_FLOCK);
	assert_int_equal(t->locks[1].type, F_RDLCK);
	assert_int_equal(img.npipes, 1);
	assert_memory_equal(img.pipes[0].data, "unread", 6);
	assert_int_equal(img.pipes[0].size, 8192);
	assert_int_equal(t->nfds, 4);
	assert_int_equal(t->fds[2].kind, CD_FD_MEMFD);
	assert_int_equal(t->fds[2].obj, 5);
	assert_int_equal(t->fds[2].pos, 5);
	assert_int_equal(img.nmemfds, 5);
	assert_int_equal(img.memfds[3].obj, -1);
	assert_int_equal(img.memfds[3].of, 3);
	assert_string_equal(img.memfds[3].name, "mapped");
	assert_int_equal(img.memfds[3].seals, 0x1f);
	assert_int_equal(img.memfds[3].mode, 0604);
	assert_int_equal(img.memfds[3].uid, 1000);
	assert_int_equal(img.memfds[3].gid, 100);
	assert_int_equal(img.memfds[3].len, 12388);
	assert_true(img.memfds[3].csum == 42);
	assert_int_equal(img.memfds[3].shmid, 88);
	assert_int_equal(img.memfds[4].obj, -1);
	assert_int_equal(img.memfds[4].shmid, 89);
	assert_int_equal(img.memfds[0].of, 0);
	assert_int_equal(img.memfds[1].of, 1);
	assert_null(img.memfds[1].data);
	assert_int_equal(img.memfds[1].len, 70000);
	assert_true(img.memfds[1].csum == 0x8000000000000001ULL);
	assert_int_equal(img.memfds[1].shmid, 77);
	assert_int_equal(img.memfds[0].shmid, 0);
	assert_int_equal(img.memfds[2].obj, 8);
	assert_int_equal(img.memfds[2].of, 1);
	assert_int_equal(img.memfds[2].len, 0);
	assert_int_equal(img.memfds[0].obj, 5);
	assert_string_equal(img.memfds[0].name, "buf");
	assert_int_equal(img.memfds[0].seals, 0x6);
	assert_int_equal(img.memfds[0].mode, 0640);
	assert_int_equal(img.memfds[0].uid, 1000);
	assert_int_equal(img.memfds[0].gid, 100);
	assert_int_equal(img.memfds[0].len, 6);
	assert_memory_equal(img.memfds[0].data, "memfd!", 6);
	assert_int_equal(t->fds[3].kind, CD_FD_DELETED);
	assert_int_equal(t->fds[3].obj, 6);
	assert_int_equal(t->fds[3].pos, 2);
	assert_int_equal(img.ndeleted, 3);
	assert_int_equal(img.deleted[2].obj, -1);
	assert_int_equal(img.deleted[2].of, 2);
	assert_string_equal(img.deleted[2].path, "/tmp/ghost");
	assert_int_equal(img.deleted[1].obj, 9);
	assert_int_equal(img.deleted[1].of, 0);
	assert_null(img.deleted[1].data);
	assert_int_equal(img.deleted[0].obj, 6);
	assert_string_equal(img.deleted[0].path, "/tmp/gone");
	assert_int_equal(img.deleted[0].mode, 0604);
	assert_int_equal(img.deleted[0].uid, 1000);
	assert_int_equal(img.deleted[0].gid, 100);
	assert_int_equal(img.deleted[0].len, 4);
	assert_memory_equal(img.deleted[0].data, "gone", 4);
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

static json_t *task0(json_t *j)
{
	return json_array_get(json_object_get(j, "tasks"), 0);
}

static json_t *fd0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "fds"), 0);
}

static json_t *vma0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "vmas"), 0);
}

/* Issue 11: "uids": [] left the uids uninitialised. */
static void test_refuses_fixed_array_of_other_length(void **state)
{
	json_t *j = encoded();

	json_object_set_new(task0(j), "uids", json_array());
	expect_refused(j, "\"uids\": 0 elements, expected 4");
	j = encoded();
	json_array_append_new(json_object_get(task0(j), "rlimits"), json_integer(0));
	expect_refused(j, "\"rlimits\"");
	j = encoded();
	json_array_remove(json_array_get(json_object_get(task0(j), "sigactions"), 3), 0);
	expect_refused(j, "sigactions");
}

/* Issue 11: negative object indices were later used as array indexes. */
static void test_refuses_negative_index(void **state)
{
	json_t *j = encoded();

	json_object_set_new(fd0(j), "obj", json_integer(-1));
	expect_refused(j, "\"obj\"");
	j = encoded();
	json_object_set_new(vma0(j), "shmid", json_integer(-5));
	expect_refused(j, "\"shmid\"");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "pipes"), 0), "id", json_integer(-2));
	expect_refused(j, "\"id\"");
	j = encoded();
	json_object_set_new(fd0(j), "fd", json_integer(-1));
	expect_refused(j, "\"fd\"");
}

static json_t *memfd0(json_t *j)
{
	return json_array_get(json_object_get(j, "memfds"), 0);
}

/* A memfd's fields in range, and an fd naming a memfd that exists. */
static void test_refuses_bad_memfd(void **state)
{
	json_t *j = encoded();

	json_object_set_new(memfd0(j), "seals", json_integer(0x40));
	expect_refused(j, "\"seals\"");
	j = encoded();
	json_object_set_new(memfd0(j), "mode", json_integer(010000));
	expect_refused(j, "\"mode\"");
	j = encoded();
	json_object_set_new(memfd0(j), "name", json_string("a/b"));
	expect_refused(j, "\"name\"");
	j = encoded();
	json_object_set_new(memfd0(j), "obj", json_integer(4));
	expect_refused(j, "no memfd 5");
	j = encoded();
	json_array_append(json_object_get(j, "memfds"), memfd0(j));
	expect_refused(j, "repeated");
	/* "of": an earlier entry that is a memfd's own */
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 1), "of", json_integer(2));
	expect_refused(j, "\"of\"");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 1), "of", json_integer(0));
	expect_refused(j, "entry 1 is not a memfd's own");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 1), "size",
	                    json_integer(-1));
	expect_refused(j, "\"size\"");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 1), "shmid",
	                    json_integer(0));
	expect_refused(j, "\"shmid\"");
	j = encoded();
	json_object_set_new(memfd0(j), "shmid", json_integer(77));
	expect_refused(j, "\"shmid\": 77 repeated");
	/* obj -1: only a memfd's own entry, named by its mappings */
	j = encoded();
	json_object_del(json_array_get(json_object_get(j, "memfds"), 3), "shmid");
	expect_refused(j, "\"obj\": -1");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 4), "of", json_integer(3));
	expect_refused(j, "\"obj\": -1");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 3), "obj",
	                    json_integer(-2));
	expect_refused(j, "\"obj\"");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "memfds"), 3), "obj",
	                    json_integer(2));
	expect_refused(j, "\"obj\": 2");
}

/* make_image with a SysV segment (id 7, 8000 bytes: two pages, the second
 * with data) attached read-write by task 0 at 0x30000, in two mappings. */
static json_t *encoded_sysv(void)
{
	struct cd_image img;
	cd_err err = {0};

	make_image(&img);
	struct cd_task *t = &img.tasks[0];
	t->vmas = realloc(t->vmas, 4 * sizeof(*t->vmas));
	assert_non_null(t->vmas);
	t->vmas[2] = (struct cd_vma){.start = 0x30000,
	                             .end = 0x31000,
	                             .prot = PROT_READ | PROT_WRITE,
	                             .shared = true,
	                             .kind = CD_VMA_SYSV_SHM,
	                             .flags = CD_VMF_MAYWRITE,
	                             .shmid = 7};
	t->vmas[3] = t->vmas[2];
	t->vmas[3].start = 0x31000;
	t->vmas[3].end = 0x32000;
	t->vmas[3].pgoff = 0x1000;
	t->vmas[3].prot = PROT_READ;
	t->nvmas = 4;
	img.nsysv_shm = 1;
	img.sysv_shm = calloc(1, sizeof(*img.sysv_shm));
	assert_non_null(img.sysv_shm);
	img.sysv_shm[0] = (struct cd_sysv_shm){.key = 0x1234,
	                                       .id = 7,
	                                       .mode = 0640,
	                                       .uid = 1000,
	                                       .gid = 100,
	                                       .removed = true,
	                                       .locked = true,
	                                       .size = 8000,
	                                       .pages_size = CD_PAGE_SIZE,
	                                       .pages_csum = 0x99};
	img.sysv_shm[0].nruns = 1;
	img.sysv_shm[0].runs = calloc(1, sizeof(struct cd_run));
	img.sysv_shm[0].runs[0] = (struct cd_run){1, 1, CD_RUN_DATA};
	img.nsysv_msq = 1;
	img.sysv_msq = calloc(1, sizeof(*img.sysv_msq));
	assert_non_null(img.sysv_msq);
	img.sysv_msq[0] = (struct cd_sysv_msq){
	    .key = -5, .id = 3, .mode = 0620, .uid = 1000, .gid = 100, .qbytes = 3000};
	img.sysv_msq[0].nmsgs = 2;
	img.sysv_msq[0].msgs = calloc(2, sizeof(struct cd_sysv_msg));
	img.sysv_msq[0].msgs[0] = (struct cd_sysv_msg){.mtype = 7, .len = 3};
	img.sysv_msq[0].msgs[0].data = (uint8_t *)strdup("a\x80z");
	img.sysv_msq[0].msgs[1] = (struct cd_sysv_msg){.mtype = INT64_MAX, .len = 0};
	img.sysv_msq[0].msgs[1].data = (uint8_t *)strdup("");
	img.nsysv_sem = 1;
	img.sysv_sem = calloc(1, sizeof(*img.sysv_sem));
	assert_non_null(img.sysv_sem);
	img.sysv_sem[0] =
	    (struct cd_sysv_sem){.key = 0x77, .id = 9, .mode = 0640, .operated = true, .nsems = 3};
	img.sysv_sem[0].vals = calloc(3, sizeof(uint16_t));
	img.sysv_sem[0].vals[1] = 5;
	img.sysv_sem[0].vals[2] = 32767;
	json_t *j = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_non_null(j);
	return j;
}

static void test_sysv_shm_round_trip(void **state)
{
	json_t *j = encoded_sysv();
	struct cd_image img;
	cd_err err = {0};

	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.nsysv_shm, 1);
	const struct cd_sysv_shm *m = cd_image_sysv_shm(&img, 7);
	assert_non_null(m);
	assert_int_equal(m->key, 0x1234);
	assert_int_equal(m->mode, 0640);
	assert_int_equal(m->uid, 1000);
	assert_int_equal(m->gid, 100);
	assert_true(m->removed);
	assert_true(m->locked);
	assert_int_equal(m->size, 8000);
	assert_int_equal(m->pages_size, CD_PAGE_SIZE);
	assert_int_equal(m->pages_csum, 0x99);
	assert_int_equal(m->nruns, 1);
	assert_int_equal(m->runs[0].page, 1);
	assert_int_equal(m->runs[0].npages, 1);
	const struct cd_vma *v = &img.tasks[0].vmas[3];
	assert_int_equal(v->kind, CD_VMA_SYSV_SHM);
	assert_int_equal(v->shmid, 7);
	assert_int_equal(v->pgoff, 0x1000);
	assert_int_equal(v->flags, CD_VMF_MAYWRITE);
	assert_int_equal(img.nsysv_msq, 1);
	const struct cd_sysv_msq *q = &img.sysv_msq[0];
	assert_int_equal(q->key, -5);
	assert_int_equal(q->id, 3);
	assert_int_equal(q->mode, 0620);
	assert_int_equal(q->uid, 1000);
	assert_int_equal(q->gid, 100);
	assert_int_equal(q->qbytes, 3000);
	assert_int_equal(q->nmsgs, 2);
	assert_int_equal(q->msgs[0].mtype, 7);
	assert_int_equal(q->msgs[0].len, 3);
	assert_memory_equal(q->msgs[0].data, "a\x80z", 3);
	assert_int_equal(q->msgs[1].mtype, INT64_MAX);
	assert_int_equal(q->msgs[1].len, 0);
	assert_int_equal(img.nsysv_sem, 1);
	const struct cd_sysv_sem *se = &img.sysv_sem[0];
	assert_int_equal(se->key, 0x77);
	assert_int_equal(se->id, 9);
	assert_int_equal(se->mode, 0640);
	assert_true(se->operated);
	assert_int_equal(se->nsems, 3);
	assert_int_equal(se->vals[0], 0);
	assert_int_equal(se->vals[1], 5);
	assert_int_equal(se->vals[2], 32767);
	cd_image_free(&img);
}

static json_t *sysv0(json_t *j)
{
	return json_array_get(json_object_get(j, "sysv_shm"), 0);
}

static json_t *vma_at(json_t *j, size_t i)
{
	return json_array_get(json_object_get(task0(j), "vmas"), i);
}

/* A segment's fields in range, its runs inside it and matching its page
 * file, and attachments that are whole attachments of a segment of the
 * image. */
static void test_refuses_bad_sysv_shm(void **state)
{
	json_t *j = encoded_sysv();

	json_object_set_new(sysv0(j), "mode", json_integer(01640));
	expect_refused(j, "\"mode\"");
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "id", json_integer(-1));
	expect_refused(j, "\"id\"");
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "size", json_integer(0));
	expect_refused(j, "\"size\"");
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "runs", json_pack("[[I,I]]", (json_int_t)1, (json_int_t)2));
	expect_refused(j, "\"runs\"");
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "runs",
	                    json_pack("[[I,I,I]]", (json_int_t)1, (json_int_t)1, (json_int_t)0));
	expect_refused(j, "\"runs\"");
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "pages_size", json_integer(0));
	expect_refused(j, "\"pages_size\"");
	j = encoded_sysv();
	json_array_append(json_object_get(j, "sysv_shm"), sysv0(j));
	expect_refused(j, "repeated");
	/* an attachment of a segment the image does not hold */
	j = encoded_sysv();
	json_object_set_new(sysv0(j), "id", json_integer(8));
	expect_refused(j, "id 7 that the dump did not take");
	/* the segment's second page unmapped */
	j = encoded_sysv();
	json_array_remove(json_object_get(task0(j), "vmas"), 3);
	expect_refused(j, "part of an attachment");
	/* an attachment not at offset 0 */
	j = encoded_sysv();
	json_array_remove(json_object_get(task0(j), "vmas"), 2);
	expect_refused(j, "part of an attachment");
	/* parts of one attachment read-only and not */
	j = encoded_sysv();
	json_object_set_new(vma_at(j, 3), "flags", json_integer(0));
	expect_refused(j, "read-only and not");
	j = encoded_sysv();
	json_object_set_new(vma_at(j, 2), "shared", json_integer(0));
	expect_refused(j, "a SysV attachment not shared");
	/* queues: a message type of 0, a repeated key, qbytes out of range */
	j = encoded_sysv();
	json_object_set_new(
	    json_array_get(
	        json_object_get(json_array_get(json_object_get(j, "sysv_msq"), 0), "msgs"), 0),
	    "mtype", json_integer(0));
	expect_refused(j, "\"mtype\"");
	j = encoded_sysv();
	json_object_set_new(json_array_get(json_object_get(j, "sysv_msq"), 0), "qbytes",
	                    json_integer(-1));
	expect_refused(j, "\"qbytes\"");
	j = encoded_sysv();
	json_array_append_new(json_object_get(j, "sysv_msq"),
	                      json_deep_copy(json_array_get(json_object_get(j, "sysv_msq"), 0)));
	json_object_set_new(json_array_get(json_object_get(j, "sysv_msq"), 1), "id",
	                    json_integer(4));
	expect_refused(j, "repeated");
	/* sets: a value above SEMVMX, no semaphore */
	j = encoded_sysv();
	json_object_set_new(json_array_get(json_object_get(j, "sysv_sem"), 0), "vals",
	                    json_pack("[i]", 32768));
	expect_refused(j, "\"vals[0]\"");
	j = encoded_sysv();
	json_object_set_new(json_array_get(json_object_get(j, "sysv_sem"), 0), "vals",
	                    json_array());
	expect_refused(j, "\"vals\"");
	/* may-write is a shared mapping's */
	j = encoded();
	json_object_set_new(vma0(j), "flags", json_integer(CD_VMF_MAYWRITE));
	expect_refused(j, "may-write");
}

static json_t *deleted0(json_t *j)
{
	return json_array_get(json_object_get(j, "deleted"), 0);
}

/* A deleted file's fields in range, and an fd naming one that exists. */
static void test_refuses_bad_deleted(void **state)
{
	json_t *j = encoded();

	json_object_set_new(deleted0(j), "path", json_string("rel/x"));
	expect_refused(j, "\"path\"");
	j = encoded();
	json_object_set_new(deleted0(j), "path", json_string("/tmp/"));
	expect_refused(j, "\"path\"");
	j = encoded();
	json_object_set_new(deleted0(j), "mode", json_integer(-1));
	expect_refused(j, "\"mode\"");
	j = encoded();
	json_object_set_new(deleted0(j), "uid", json_integer(4294967295LL));
	expect_refused(j, "\"uid\"");
	j = encoded();
	json_object_set_new(deleted0(j), "obj", json_integer(4));
	expect_refused(j, "no deleted file 6");
	j = encoded();
	json_array_append(json_object_get(j, "deleted"), deleted0(j));
	expect_refused(j, "repeated");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "deleted"), 1), "of",
	                    json_integer(-1));
	expect_refused(j, "\"of\"");
	/* no open file: only an own entry */
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(j, "deleted"), 1), "obj",
	                    json_integer(-1));
	expect_refused(j, "\"obj\"");
	j = encoded();
	json_object_set_new(deleted0(j), "obj", json_integer(2));
	expect_refused(j, "\"obj\"");
}

/* A shared memory mapping's memfd name: "/memfd:NAME (deleted)", kept. */
static void test_memfd_mapping_name(void **state)
{
	static const char *const bad[] = {"/tmp/x", "/memfd:a/b (deleted)", "/memfd:x",
	                                  "/memfd: (deleted"};
	struct cd_image img;
	cd_err err = {0};
	json_t *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = encoded();
		json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_ANON_SHARED));
		json_object_set_new(vma0(j), "path", json_string(bad[i]));
		expect_refused(j, "\"path\"");
	}
	j = encoded();
	json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_ANON_SHARED));
	json_object_set_new(vma0(j), "shmid", json_integer(77));
	json_object_set_new(vma0(j), "flags", json_integer(0));
	json_object_set_new(vma0(j), "path", json_string("/memfd:buf (deleted)"));
	if (cd_image_from_json(j, &img, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(img.tasks[0].vmas[0].path, "/memfd:buf (deleted)");
	cd_image_free(&img);
	json_decref(j);
}

/* An AIO ring: shared, no path, pages or offset, its head inside it. */
static json_t *aio_vma(int64_t head)
{
	json_t *j = encoded();

	json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_AIO));
	json_object_set_new(vma0(j), "shared", json_integer(1));
	json_object_set_new(vma0(j), "flags", json_integer(0));
	json_object_set_new(vma0(j), "pgoff", json_integer(0));
	json_object_set_new(vma0(j), "runs", json_array());
	json_object_set_new(vma0(j), "shmid", json_integer(head));
	json_object_del(vma0(j), "path");
	/* its two data pages are gone from the page file */
	json_int_t size = json_integer_value(json_object_get(task0(j), "pages_size"));
	json_object_set_new(task0(j), "pages_size", json_integer(size - 2 * 4096));
	return j;
}

static void test_aio_ring_vma(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = aio_vma(5);

	if (cd_image_from_json(j, &img, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(img.tasks[0].vmas[0].kind, CD_VMA_AIO);
	assert_int_equal(img.tasks[0].vmas[0].shmid, 5);
	cd_image_free(&img);
	json_decref(j);
	expect_refused(aio_vma(1 << 20), "AIO ring");
	expect_refused(aio_vma(-1), "\"shmid\"");
	j = aio_vma(5);
	json_object_set_new(vma0(j), "path", json_string("/tmp/x"));
	expect_refused(j, "AIO ring");
}

/* An object id beyond every fd there is, or a stdio one above 2. */
static void test_refuses_object_id_out_of_range(void **state)
{
	json_t *j = encoded();

	json_object_set_new(fd0(j), "obj", json_integer(1000000));
	expect_refused(j, "\"obj\"");
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_STDIO));
	expect_refused(j, "\"obj\"");
}

/* Issue 11: non-integer array elements became 0. */
static void test_refuses_non_integer_element(void **state)
{
	json_t *j = encoded();

	json_array_append_new(json_object_get(task0(j), "groups"), json_string("wheel"));
	expect_refused(j, "groups[0]");
	j = encoded();
	json_array_set_new(json_object_get(task0(j), "itimers"), 5, json_real(1.5));
	expect_refused(j, "itimers[5]");
	j = encoded();
	json_array_set_new(json_object_get(json_object_get(task0(j), "mm"), "auxv"), 1,
	                   json_null());
	expect_refused(j, "auxv[1]");
}

/* The restore can only do what the planned layout says if every session
 * and group is started by a task of the image that leads it. */
static void test_refuses_session_plan(void **state)
{
	json_t *j = encoded();

	json_object_set_new(task0(j), "new_sid", json_integer(7));
	expect_refused(j, "\"new_sid\": 7 does not lead a session");
	j = encoded();
	json_object_set_new(task0(j), "new_pgid", json_integer(43));
	expect_refused(j, "\"new_pgid\": 43 does not lead a group");
	j = encoded();
	json_object_set_new(task0(j), "new_sid", json_integer(0));
	expect_refused(j, "\"new_sid\": 0 out of range");
}

/* A zombie: a small object of its own; a status the restore cannot exit
 * with again and a zombie root are refused. */
static void test_zombie(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = encoded(), *z = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:i}", "pid", 43,
	                                      "ppid", 42, "pgid", 42, "sid", 42, "new_pgid", 42,
	                                      "new_sid", 42, "comm", "sleep", "exit_status", 15);

	json_array_append_new(json_object_get(j, "tasks"), z);
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_int_equal(img.ntasks, 2);
	assert_true(img.tasks[1].zombie);
	assert_int_equal(img.tasks[1].exit_status, 15);
	json_t *again = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_int_equal(cd_image_from_json(again, &img, &err), 0);
	assert_int_equal(img.tasks[1].exit_status, 15);
	cd_image_free(&img);
	json_decref(again);
	json_object_set_new(z, "exit_status", json_integer(0x8b)); /* SIGSEGV, core dumped */
	json_incref(j);
	expect_refused(j, "\"exit_status\": 0x8b is not an exit");
	json_object_set_new(z, "exit_status", json_integer(0x7f)); /* a stop, not an exit */
	json_incref(j);
	expect_refused(j, "0x7f is not an exit");
	json_object_set_new(z, "exit_status", json_integer(3 << 8));
	json_object_set_new(j, "root", json_integer(43));
	expect_refused(j, "the root is a zombie");
}

/* A job of a shell: its session and group are the shell's, outside. */
static void plan_tree(struct cd_image *img, struct cd_task *t, size_t n)
{
	memset(img, 0, sizeof(*img));
	img->tasks = t;
	img->ntasks = n;
	img->root = t[0].pid;
}

static void test_session_plan(void **state)
{
	struct cd_task t[3] = {
	    {.pid = 10, .ppid = 5, .pgid = 5, .sid = 4}, /* in the shell's group */
	    {.pid = 11, .ppid = 10, .pgid = 5, .sid = 4},
	    {.pid = 12, .ppid = 10, .pgid = 12, .sid = 4}, /* a group of its own */
	};
	struct cd_image img;
	cd_err err = {0};

	plan_tree(&img, t, 3);
	assert_int_equal(cd_session_plan(&img, &err), 0);
	assert_int_equal(t[0].new_sid, 10);
	assert_int_equal(t[0].new_pgid, 10);
	assert_int_equal(t[1].new_sid, 10);
	assert_int_equal(t[1].new_pgid, 10); /* the shell's group becomes the root's */
	assert_int_equal(t[2].new_sid, 10);
	assert_int_equal(t[2].new_pgid, 12);
	assert_int_equal(cd_session_check(&img, &err), 0);
	/* a group whose leader (12) has moved to another group */
	t[1].pgid = 12;
	t[2].pgid = 10;
	assert_true(cd_session_plan(&img, &err) < 0);
	assert_non_null(strstr(err.msg, "pid 11: its process group 12 has lost its leader"));
	/* a session whose leader is outside and is not the root's */
	t[1].pgid = t[1].sid = 9;
	assert_true(cd_session_plan(&img, &err) < 0);
	assert_non_null(strstr(err.msg, "pid 11: its session leader 9 is outside the tree"));
}

static void test_refuses_wrong_type(void **state)
{
	json_t *j = encoded();

	json_object_set_new(task0(j), "umask", json_string("022"));
	expect_refused(j, "\"umask\": not an integer");
	j = encoded();
	json_object_set_new(j, "shell_job", json_integer(1));
	expect_refused(j, "\"shell_job\"");
	j = encoded();
	json_object_set_new(task0(j), "regs", json_array());
	expect_refused(j, "\"regs\"");
	j = encoded();
	json_object_del(task0(j), "cwd");
	expect_refused(j, "\"cwd\"");
}

/* Values that do not fit their C field. */
static void test_refuses_integer_out_of_c_range(void **state)
{
	json_t *j = encoded();

	json_object_set_new(fd0(j), "flags", json_integer((json_int_t)1 << 40));
	expect_refused(j, "\"flags\"");
	j = encoded();
	json_object_set_new(vma0(j), "shared", json_integer(2));
	expect_refused(j, "\"shared\"");
	j = encoded();
	json_array_set_new(json_object_get(task0(j), "uids"), 1, json_integer(-1));
	expect_refused(j, "uids[1]");
}

/* Values that fit their C field but not their meaning. */
static void test_refuses_integer_out_of_meaning(void **state)
{
	json_t *j = encoded();

	json_object_set_new(task0(j), "pid", json_integer(0));
	expect_refused(j, "\"pid\"");
	j = encoded();
	json_object_set_new(vma0(j), "prot", json_integer(8));
	expect_refused(j, "\"prot\"");
	j = encoded();
	json_object_set_new(task0(j), "nice", json_integer(40));
	expect_refused(j, "\"nice\"");
	j = encoded();
	json_object_set_new(task0(j), "sched_policy", json_integer(6)); /* SCHED_DEADLINE */
	expect_refused(j, "\"sched_policy\"");
	j = encoded();
	json_object_set_new(task0(j), "sched_prio", json_integer(100));
	expect_refused(j, "\"sched_prio\"");
	j = encoded();
	json_object_set_new(task0(j), "pdeathsig", json_integer(65));
	expect_refused(j, "\"pdeathsig\"");
	j = encoded();
	json_object_set_new(task0(j), "child_subreaper", json_integer(2));
	expect_refused(j, "\"child_subreaper\"");
	j = encoded();
	json_object_set_new(task0(j), "thp_disable", json_integer(4));
	expect_refused(j, "\"thp_disable\"");
	j = encoded();
	json_object_set_new(task0(j), "timer_slack_ns", json_integer(-1));
	expect_refused(j, "\"timer_slack_ns\"");
	j = encoded();
	json_object_set_new(task0(j), "membarrier", json_integer(1 << 9));
	expect_refused(j, "\"membarrier\"");
	j = encoded();
	json_object_set_new(task0(j), "mlock_future", json_integer(3));
	expect_refused(j, "\"mlock_future\"");
	j = encoded();
	json_object_set_new(vma0(j), "flags", json_integer(CD_VMF_ALL + 1));
	expect_refused(j, "\"flags\"");
	j = encoded();
	json_array_set_new(json_object_get(task0(j), "itimers"), 1, json_integer(1000000));
	expect_refused(j, "itimers[1]");
}

static json_t *timer0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "posix_timers"), 0);
}

static json_t *lock0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "locks"), 0);
}

/* POSIX timers: only clocks, notifications and ids the restore recreates. */
static void test_refuses_bad_posix_timer(void **state)
{
	json_t *j = encoded();

	json_object_set_new(timer0(j), "clock", json_integer(CLOCK_REALTIME_ALARM));
	expect_refused(j, "clock 8");
	j = encoded();
	/* the process CPU clock of pid 99, not the task's (42) */
	json_object_set_new(timer0(j), "clock", json_integer(-798)); /* ~99 << 3 | 2 */
	expect_refused(j, "\"clock\"");
	j = encoded();
	json_object_set_new(timer0(j), "clock", json_integer(-5)); /* ~0 << 3 | 3: a clock fd */
	expect_refused(j, "\"clock\"");
	j = encoded();
	json_object_set_new(timer0(j), "notify", json_integer(SIGEV_THREAD));
	expect_refused(j, "\"notify\"");
	j = encoded();
	json_object_set_new(timer0(j), "signo", json_integer(0));
	expect_refused(j, "\"signo\"");
	j = encoded();
	json_object_set_new(timer0(j), "signo", json_integer(65));
	expect_refused(j, "\"signo\"");
	j = encoded();
	json_object_set_new(timer0(j), "vnsec", json_integer(1000000000));
	expect_refused(j, "\"vnsec\"");
	j = encoded();
	json_object_set_new(timer0(j), "isec", json_integer(-1));
	expect_refused(j, "\"isec\"");
	j = encoded();
	json_object_set_new(timer0(j), "id", json_integer(2));
	expect_refused(j, "id 2 repeated");
}

/* File locks: through a file fd of the task, a known kind and a sane range. */
static void test_refuses_bad_lock(void **state)
{
	json_t *j = encoded();

	json_object_set_new(lock0(j), "fd", json_integer(8));
	expect_refused(j, "\"fd\": 8");
	j = encoded();
	json_object_set_new(lock0(j), "kind", json_integer(CD_LOCK_KIND_MAX));
	expect_refused(j, "\"kind\"");
	j = encoded();
	json_object_set_new(lock0(j), "type", json_integer(F_UNLCK));
	expect_refused(j, "\"type\"");
	j = encoded();
	json_object_set_new(lock0(j), "start", json_integer(-1));
	expect_refused(j, "\"start\"");
	j = encoded();
	json_object_set_new(lock0(j), "start", json_integer(INT64_MAX));
	expect_refused(j, "range overflows");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(task0(j), "locks"), 1), "len",
	                    json_integer(5));
	expect_refused(j, "no range");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(task0(j), "fds"), 1), "kind",
	                    json_integer(CD_FD_CHR));
	expect_refused(j, "not a file of the task");
}

/* An image written before timers and locks were dumped still reads. */
static void test_reads_image_without_timers_and_locks(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	json_object_del(task0(j), "posix_timers");
	json_object_del(task0(j), "locks");
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].ntimers, 0);
	assert_int_equal(img.tasks[0].nlocks, 0);
	cd_image_free(&img);
}

/* Flag combinations the kernel never shows, which the restore would fail on or make
 * differently. */
static void test_refuses_vma_flags_of_no_mapping(void **state)
{
	static const int64_t bad[] = {
	    CD_VMF_LOCKONFAULT,                  /* lock on fault without the lock */
	    CD_VMF_HUGEPAGE | CD_VMF_NOHUGEPAGE, /* both */
	    CD_VMF_RANDOM | CD_VMF_SEQUENTIAL,   /* both */
	};
	json_t *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = encoded();
		json_object_set_new(vma0(j), "flags", json_integer(bad[i]));
		expect_refused(j, "\"flags\"");
	}
	/* wipe-on-fork is for private anonymous memory only */
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(task0(j), "vmas"), 1), "flags",
	                    json_integer(CD_VMF_WIPEONFORK));
	expect_refused(j, "wipe-on-fork");
}

/* A guard region: a run without data, in private anonymous or file mappings only (shared
 * memory is read from its object, which has no guards). */
static void test_guard_runs(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = encoded();

	json_array_set_new(json_object_get(vma0(j), "runs"), 1,
	                   json_pack("[i,i,i]", 2, 1, CD_RUN_GUARD));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_int_equal(img.tasks[0].vmas[0].runs[1].src, CD_RUN_GUARD);
	cd_image_free(&img);
	json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_ANON_SHARED));
	json_object_set_new(vma0(j), "shared", json_integer(1));
	json_object_set_new(vma0(j), "flags", json_integer(0));
	expect_refused(j, "guard region");
}

/* An incremental image: its parent named by absolute path and manifest checksum, pages
 * from it (CD_RUN_PREV) only in private anonymous mappings and only when it names one. */
static void test_parent(void **state)
{
	struct cd_image img, back;
	cd_err err = {0};
	json_t *j = encoded();

	json_array_set_new(json_object_get(vma0(j), "runs"), 1,
	                   json_pack("[i,i,i]", 2, 1, CD_RUN_PREV));
	expect_refused(j, "the image does not name");
	j = encoded();
	json_array_set_new(json_object_get(vma0(j), "runs"), 1,
	                   json_pack("[i,i,i]", 2, 1, CD_RUN_PREV));
	json_object_set_new(j, "parent",
	                    json_pack("{s:s, s:I}", "path", "/ckpt/one", "hash", (json_int_t)-5));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_string_equal(img.parent, "/ckpt/one");
	assert_true(img.parent_hash == (uint64_t)-5);
	assert_int_equal(img.tasks[0].vmas[0].runs[1].src, CD_RUN_PREV);
	json_t *again = cd_image_to_json(&img, &err);
	assert_non_null(again);
	assert_int_equal(cd_image_from_json(again, &back, &err), 0);
	assert_string_equal(back.parent, "/ckpt/one");
	assert_true(back.parent_hash == img.parent_hash);
	cd_image_free(&back);
	cd_image_free(&img);
	json_decref(again);
	json_object_set_new(json_object_get(j, "parent"), "path", json_string("ckpt/one"));
	expect_refused(json_deep_copy(j), "not absolute");
	json_object_set_new(json_object_get(j, "parent"), "path", json_string("/ckpt/one"));
	json_object_del(json_object_get(j, "parent"), "hash");
	expect_refused(json_deep_copy(j), "\"hash\"");
	json_object_set_new(json_object_get(j, "parent"), "hash", json_integer(1));
	json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_ANON_SHARED));
	json_object_set_new(vma0(j), "shared", json_integer(1));
	json_object_set_new(vma0(j), "flags", json_integer(0));
	expect_refused(j, "not private anonymous");
}

/* The page data layout ("pages"): absent for the plain file, else streams
 * 1..16 and a known codec, kept through a round trip. */
static void test_pages_layout(void **state)
{
	struct cd_image img, back;
	cd_err err = {0};
	json_t *j = encoded();

	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_true(cd_page_layout_plain(&img.pages));
	json_t *plain = cd_image_to_json(&img, &err);
	assert_null(json_object_get(plain, "pages"));
	json_decref(plain);
	cd_image_free(&img);
	json_object_set_new(j, "pages", json_pack("{s:i, s:s}", "streams", 3, "codec", "zstd"));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_int_equal(img.pages.streams, 3);
	assert_int_equal(img.pages.codec, CD_CODEC_ZSTD);
	json_t *again = cd_image_to_json(&img, &err);
	assert_non_null(again);
	assert_int_equal(cd_image_from_json(again, &back, &err), 0);
	assert_int_equal(back.pages.streams, 3);
	assert_int_equal(back.pages.codec, CD_CODEC_ZSTD);
	cd_image_free(&back);
	cd_image_free(&img);
	json_decref(again);
	json_object_set_new(json_object_get(j, "pages"), "streams", json_integer(17));
	expect_refused(json_deep_copy(j), "\"streams\"");
	json_object_set_new(json_object_get(j, "pages"), "streams", json_integer(0));
	expect_refused(json_deep_copy(j), "\"streams\"");
	json_object_set_new(json_object_get(j, "pages"), "streams", json_integer(2));
	json_object_set_new(json_object_get(j, "pages"), "codec", json_string("gzip"));
	expect_refused(json_deep_copy(j), "unknown page codec");
	json_object_set_new(json_object_get(j, "pages"), "codec", json_integer(1));
	expect_refused(json_deep_copy(j), "\"codec\"");
	json_object_set_new(j, "pages", json_integer(2));
	expect_refused(j, "pages");
}

/* The streamed writer and reader: the same bytes back through 3 streams
 * and each codec, read in order and at random; a damaged record, a short
 * or missing stream refused. */
static void stream_round_trip(enum cd_page_codec codec)
{
	const struct cd_page_layout l = {.streams = 3, .codec = codec};
	const size_t size = 7 * CD_STREAM_CHUNK + 5 * CD_PAGE_SIZE;
	char dir[] = "/tmp/test-streams-XXXXXX", path[128];
	uint8_t *data = malloc(size);
	struct cd_page_writer *pw;
	struct cd_page_reader *pr;
	uint64_t got_size, csum, x = 88172645463325252ULL;
	cd_err err = {0};

	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	for (size_t i = 0; i < size; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* every other chunk compressible (text-like), the rest random */
		uint64_t v = (i / CD_STREAM_CHUNK) % 2 ? x : 0x2074786574206120ULL + (i & 0xff00);
		memcpy(data + i, &v, 8);
	}
	assert_int_equal(cd_pw_open_layout(dirfd, "pages-9.img", &l, &pw, &err), 0);
	for (size_t off = 0; off < size;) {
		uint8_t *dst;
		size_t n = cd_pw_reserve(pw, &dst);
		n = n < size - off ? n : size - off;
		memcpy(dst, data + off, n);
		assert_int_equal(cd_pw_commit(pw, n, &err), 0);
		off += n;
	}
	assert_int_equal(cd_pw_finish(pw, &got_size, &csum, &err), 0);
	cd_pw_free(pw);
	assert_int_equal(got_size, size);
	assert_int_equal(faccessat(dirfd, "pages-9.img", F_OK, 0), -1);
	assert_int_equal(cd_page_files_check(dirfd, "pages-9.img", size, &l, &err), 0);

	assert_int_equal(cd_pr_open_layout(dirfd, "pages-9.img", size, &l, &pr, &err), 0);
	const void *src;
	assert_int_equal(cd_pr_at(pr, 6 * CD_STREAM_CHUNK + 4096, 8192, &src, &err), 0);
	assert_memory_equal(src, data + 6 * CD_STREAM_CHUNK + 4096, 8192);
	for (size_t off = 0; off < size;) {
		size_t n;
		assert_int_equal(cd_pr_next(pr, 3 << 20, &src, &n, &err), 0);
		assert_memory_equal(src, data + off, n);
		off += n;
	}
	assert_int_equal(cd_pr_check(pr, NULL, csum, &err), 0);
	cd_pr_free(pr);

	/* one byte changed in stream 1, in its first chunk's data */
	int fd = openat(dirfd, "pages-9.1.img", O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 4196), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, 4196), 1);
	assert_int_equal(cd_pr_open_layout(dirfd, "pages-9.img", size, &l, &pr, &err), 0);
	int r = 0;
	for (size_t off = 0; off < size && r == 0;) {
		size_t n;
		r = cd_pr_next(pr, 3 << 20, &src, &n, &err);
		off += r == 0 ? n : 0;
	}
	if (r == 0)
		r = cd_pr_check(pr, NULL, csum, &err);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "corrupt image"));
	cd_pr_free(pr);
	/* a stream cut short, then gone */
	assert_int_equal(ftruncate(fd, codec == CD_CODEC_NONE ? 4096 : 0), 0);
	close(fd);
	assert_int_equal(cd_page_files_check(dirfd, "pages-9.img", size, &l, &err), -EINVAL);
	assert_int_equal(cd_pr_open_layout(dirfd, "pages-9.img", size, &l, &pr, &err), -EINVAL);
	assert_int_equal(unlinkat(dirfd, "pages-9.1.img", 0), 0);
	assert_int_equal(cd_pr_open_layout(dirfd, "pages-9.img", size, &l, &pr, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "pages-9.1.img"));
	for (unsigned k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "pages-9.%u.img", k);
		unlinkat(dirfd, path, 0);
	}
	close(dirfd);
	rmdir(dir);
	free(data);
}

static void test_streams_none(void **state)
{
	stream_round_trip(CD_CODEC_NONE);
}

static void test_streams_lz4(void **state)
{
	stream_round_trip(CD_CODEC_LZ4);
}

static void test_streams_zstd(void **state)
{
	stream_round_trip(CD_CODEC_ZSTD);
}

static void test_stream_layout_rules(void **state)
{
	char buf[64];
	cd_err err = {0};
	enum cd_page_codec c;

	assert_int_equal(cd_page_stream_name("pages-12.img", 15, buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "pages-12.15.img");
	assert_int_equal(cd_page_layout_check(&(struct cd_page_layout){0, CD_CODEC_NONE}, &err),
	                 -EINVAL);
	assert_int_equal(cd_page_layout_check(&(struct cd_page_layout){17, CD_CODEC_NONE}, &err),
	                 -EINVAL);
	assert_int_equal(cd_page_layout_check(&(struct cd_page_layout){16, CD_CODEC_COUNT}, &err),
	                 -EINVAL);
	assert_int_equal(cd_page_layout_check(&(struct cd_page_layout){16, CD_CODEC_LZ4}, &err), 0);
	assert_int_equal(cd_page_codec_parse("zstd", &c, &err), 0);
	assert_int_equal(c, CD_CODEC_ZSTD);
	assert_int_equal(cd_page_codec_parse("gzip", &c, &err), -EINVAL);
}

static void test_refuses_enum_out_of_range(void **state)
{
	json_t *j = encoded();

	json_object_set_new(vma0(j), "kind", json_integer(CD_VMA_KIND_MAX));
	expect_refused(j, "\"kind\"");
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(-1));
	expect_refused(j, "\"kind\"");
	j = encoded();
	json_array_set_new(json_object_get(vma0(j), "runs"), 0,
	                   json_pack("[i,i,i]", 0, 2, CD_RUN_PREV + 1));
	expect_refused(j, "runs[2]");
}

static void test_refuses_bad_string(void **state)
{
	json_t *j = encoded();

	json_object_set_new(task0(j), "cwd", json_stringn("/tmp\0/etc", 9));
	expect_refused(j, "\"cwd\": contains a NUL byte");
	j = encoded();
	json_object_set_new(task0(j), "comm", json_string("a-name-longer-than-15"));
	expect_refused(j, "\"comm\": longer than 15 bytes");
	j = encoded();
	json_object_set_new(task0(j), "pages_file", json_string(".."));
	expect_refused(j, "\"pages_file\"");
}

static void test_refuses_bad_mapping(void **state)
{
	json_t *j = encoded();

	json_object_set_new(vma0(j), "end", json_integer(0x14001));
	expect_refused(j, "bad mapping");
	j = encoded();
	json_object_set_new(vma0(j), "start", json_integer(0x20000));
	json_object_set_new(vma0(j), "end", json_integer(0x24000));
	expect_refused(j, "overlaps");
	j = encoded();
	json_array_set_new(json_object_get(vma0(j), "runs"), 1, json_pack("[i,i,i]", 1, 1, 1));
	expect_refused(j, "out of order");
}

static void test_refuses_missing_pipe(void **state)
{
	json_t *j = encoded();

	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_PIPE));
	json_object_set_new(fd0(j), "pos", json_integer(98));
	expect_refused(j, "no pipe with id 98");
	j = encoded();
	json_array_append_new(json_object_get(j, "pipes"),
	                      json_pack("{s:i,s:i,s:s}", "id", 99, "size", 4096, "data", ""));
	expect_refused(j, "\"id\": 99 repeated");
}

/* New fd state: a pipe's size, SIGIO owners and /proc files stay within
 * what the image itself holds. */
static void test_refuses_bad_fd_state(void **state)
{
	json_t *j = encoded();
	json_t *p0 = json_array_get(json_object_get(j, "pipes"), 0);

	json_object_set_new(p0, "size", json_integer(4));
	expect_refused(j, "\"size\"");
	j = encoded();
	p0 = json_array_get(json_object_get(j, "pipes"), 0);
	json_object_set_new(p0, "size", json_integer(4096));
	json_object_set_new(p0, "data", json_string(""));
	for (int i = 0; i < 4097; i++)
		json_object_set_new(
		    p0, "data",
		    json_sprintf("%s00", json_string_value(json_object_get(p0, "data"))));
	expect_refused(j, "less than the 4097 bytes");
	j = encoded();
	json_object_set_new(fd0(j), "own_pid", json_integer(43));
	expect_refused(j, "\"own_pid\": 43 is not a task");
	j = encoded();
	json_object_set_new(fd0(j), "own_type", json_integer(2));
	json_object_set_new(fd0(j), "own_pid", json_integer(7));
	expect_refused(j, "is not a process group");
	j = encoded();
	json_object_set_new(fd0(j), "own_type", json_integer(3));
	expect_refused(j, "\"own_type\"");
	j = encoded();
	json_object_set_new(fd0(j), "sig", json_integer(65));
	expect_refused(j, "\"sig\"");
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_PROC));
	expect_refused(j, "/tmp/x is not a file of a task");
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_PROC));
	json_object_set_new(fd0(j), "path", json_string("/proc/421/status"));
	expect_refused(j, "not a file of a task");
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_PROC));
	json_object_set_new(fd0(j), "path", json_string("/proc/42/status"));
	struct cd_image img;
	cd_err err = {0};
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	cd_image_free(&img);
	json_decref(j);
	j = encoded();
	json_object_set_new(fd0(j), "kind", json_integer(CD_FD_PATH));
	json_object_del(fd0(j), "path");
	expect_refused(j, "\"path\": missing");
}

/* j with a second fd: the root's fd 1 (kind, obj, std as given; std
 * NULL: the key left out, as images before the field). */
static json_t *with_fd1(int kind, int obj, json_t *std)
{
	json_t *j = encoded(), *d = json_deep_copy(fd0(j));

	json_object_set_new(d, "fd", json_integer(1));
	json_object_set_new(d, "kind", json_integer(kind));
	json_object_set_new(d, "obj", json_integer(obj));
	json_object_set_new(d, "own_pid", json_integer(0));
	if (std)
		json_object_set_new(d, "std", std);
	else
		json_object_del(d, "std");
	json_array_append_new(json_object_get(task0(j), "fds"), d);
	return j;
}

static int decode_fd1_std(json_t *j)
{
	struct cd_image img;
	cd_err err = {0};

	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	int std = -2;
	for (size_t i = 0; i < img.tasks[0].nfds; i++)
		if (img.tasks[0].fds[i].fd == 1)
			std = img.tasks[0].fds[i].std;
	cd_image_free(&img);
	return std;
}

/* The std slot: the root's fd N is slot N, any other fd only the slot of
 * the root fd whose open file it is; an image without the key marks its
 * external stdio only. */
static void test_std_slot(void **state)
{
	assert_int_equal(decode_fd1_std(with_fd1(CD_FD_REG, 4, json_integer(1))), 1);
	assert_int_equal(decode_fd1_std(with_fd1(CD_FD_STDIO, 1, NULL)), 1);
	expect_refused(with_fd1(CD_FD_REG, 4, NULL), "\"std\": -1, not 1");
	expect_refused(with_fd1(CD_FD_STDIO, 1, json_integer(2)), "\"std\": 2 is not obj 1");
	expect_refused(with_fd1(CD_FD_REG, 4, json_integer(3)), "\"std\"");
	json_t *j = with_fd1(CD_FD_REG, 4, json_integer(1));
	json_object_set_new(fd0(j), "std", json_integer(1));
	expect_refused(j, "is not the open file of the root's fd 1");
	j = with_fd1(CD_FD_REG, 4, json_integer(1));
	json_object_set_new(fd0(j), "std", json_integer(0));
	expect_refused(j, "\"std\": 0 is not the open file");
}

/* An image whose task has an eventfd (fd 11), a signalfd (fd 12), a
 * timerfd, an epoll, an inotify and two unix sockets (fds 16, 17) too. */
static json_t *with_event_fds(void)
{
	struct cd_image img;
	cd_err err = {0};

	make_image(&img);
	struct cd_task *t = &img.tasks[0];
	t->fds = realloc(t->fds, 14 * sizeof(*t->fds));
	assert_non_null(t->fds);
	t->fds[2] = (struct cd_fd){.fd = 11,
	                           .kind = CD_FD_EVENTFD,
	                           .flags = 04002,
	                           .obj = 5,
	                           .std = -1,
	                           .count = UINT64_MAX - 1,
	                           .semaphore = true};
	t->fds[3] = (struct cd_fd){.fd = 12,
	                           .kind = CD_FD_SIGNALFD,
	                           .flags = 02,
	                           .obj = 6,
	                           .std = -1,
	                           .sigmask = 1ULL << 63 | 0x201};
	t->fds[4] = (struct cd_fd){.fd = 13,
	                           .kind = CD_FD_TIMERFD,
	                           .flags = 02,
	                           .obj = 7,
	                           .std = -1,
	                           .tclock = CLOCK_REALTIME,
	                           .tflags = 3,
	                           .ticks = 1ULL << 40,
	                           .vsec = 1LL << 34,
	                           .vnsec = 999999999,
	                           .isec = 10,
	                           .insec = 5};
	t->fds[5] = (struct cd_fd){.fd = 14, .kind = CD_FD_EPOLL, .flags = 02, .obj = 8, .std = -1};
	t->fds[5].watches = calloc(2, sizeof(struct cd_epoll_watch));
	assert_non_null(t->fds[5].watches);
	t->fds[5].watches[0] = (struct cd_epoll_watch){11, 0x80000001u, UINT64_MAX};
	t->fds[5].watches[1] = (struct cd_epoll_watch){13, 0x40000019u, 42};
	t->fds[5].nwatches = 2;
	t->fds[6] = (struct cd_fd){.fd = 15, .kind = CD_FD_INOTIFY, .obj = 9, .std = -1};
	t->fds[6].iwatches = calloc(2, sizeof(struct cd_inotify_watch));
	assert_non_null(t->fds[6].iwatches);
	t->fds[6].iwatches[0] = (struct cd_inotify_watch){1, 0x80000100u, strdup("/tmp")};
	t->fds[6].iwatches[1] = (struct cd_inotify_watch){2, 2, strdup("/tmp/x")};
	t->fds[6].niwatches = 2;
	/* a listening seqpacket socket on an abstract name with a NUL inside,
	 * a path-bound dgram one with its socket file's mode and owner */
	static const uint8_t abstract[] = {0, 'c', 'u', 0, 'd', 0xff};
	t->fds[7] = (struct cd_fd){.fd = 16,
	                           .kind = CD_FD_UNIX,
	                           .flags = 04002,
	                           .obj = 10,
	                           .std = -1,
	                           .sk_type = 5,
	                           .sk_listen = true,
	                           .sk_passcred = true,
	                           .sk_backlog = 4096,
	                           .sk_ino = 100,
	                           .sk_iuid = UINT32_MAX - 3,
	                           .sk_igid = 1000,
	                           .sk_rcvbuf = 131072,
	                           .sk_sndbuf = 4608};
	t->fds[7].sk_addr = malloc(sizeof(abstract));
	assert_non_null(t->fds[7].sk_addr);
	memcpy(t->fds[7].sk_addr, abstract, sizeof(abstract));
	t->fds[7].sk_addrlen = sizeof(abstract);
	t->fds[8] = (struct cd_fd){.fd = 17,
	                           .kind = CD_FD_UNIX,
	                           .flags = 02,
	                           .obj = 11,
	                           .std = -1,
	                           .sk_type = 2,
	                           .sk_mode = 01755,
	                           .sk_ino = UINT32_MAX,
	                           .sk_uid = UINT32_MAX - 1,
	                           .sk_gid = 7};
	t->fds[8].sk_addr = (uint8_t *)strdup("/run/x.sock");
	assert_non_null(t->fds[8].sk_addr);
	t->fds[8].sk_addrlen = strlen("/run/x.sock");
	/* a stream pair, two messages queued in one end, shut down one way */
	t->fds[9] = (struct cd_fd){.fd = 18,
	                           .kind = CD_FD_UNIX,
	                           .flags = 02,
	                           .obj = 12,
	                           .std = -1,
	                           .sk_type = 1,
	                           .sk_ino = 200,
	                           .sk_peer = 201,
	                           .sk_shutdown = 2};
	t->fds[9].sk_queue = calloc(2, sizeof(struct cd_sk_msg));
	assert_non_null(t->fds[9].sk_queue);
	t->fds[9].sk_queue[0] = (struct cd_sk_msg){(uint8_t *)strdup("ab"), 2};
	/* carrying the bound dgram socket of fd 17 (object 11) in flight */
	t->fds[9].sk_queue[0].fds = malloc(sizeof(int));
	assert_non_null(t->fds[9].sk_queue[0].fds);
	t->fds[9].sk_queue[0].fds[0] = 11;
	t->fds[9].sk_queue[0].nfds = 1;
	t->fds[9].sk_queue[1] = (struct cd_sk_msg){(uint8_t *)strdup(""), 0};
	/* with credentials (SO_PASSCRED on the receiver): of the task itself */
	t->fds[9].sk_queue[1].creds = true;
	t->fds[9].sk_queue[1].cred_pid = 42;
	t->fds[9].sk_queue[1].cred_uid = UINT32_MAX - 1;
	t->fds[9].sk_queue[1].cred_gid = 100;
	t->fds[9].sk_nqueue = 2;
	t->fds[10] = (struct cd_fd){.fd = 19,
	                            .kind = CD_FD_UNIX,
	                            .flags = 02,
	                            .obj = 13,
	                            .std = -1,
	                            .sk_type = 1,
	                            .sk_ino = 201,
	                            .sk_peer = 200,
	                            .sk_shutdown = 1};
	/* a TCP listener on [::1]:8080 with its options, a UDP socket
	 * connected to 127.0.0.1:53, a netlink route socket in group 1 */
	struct sockaddr_in6 l6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
	struct sockaddr_in u4 = {.sin_family = AF_INET, .sin_port = htons(53)};
	l6.sin6_addr.s6_addr[15] = 1;
	u4.sin_addr.s_addr = htonl(0x7f000001);
	t->fds[11] = (struct cd_fd){.fd = 20,
	                            .kind = CD_FD_INET,
	                            .flags = 04002,
	                            .obj = 14,
	                            .std = -1,
	                            .sk_family = AF_INET6,
	                            .sk_type = SOCK_STREAM,
	                            .sk_proto = IPPROTO_TCP,
	                            .sk_listen = true,
	                            .sk_backlog = 511,
	                            .sk_ino = 300,
	                            .sk_iuid = 1000,
	                            .sk_igid = 1001,
	                            .sk_rcvbuf = 131072,
	                            .sk_opts = CD_SKO_ALL,
	                            .sk_linger = 3,
	                            .sk_defer = 5,
	                            .sk_rcvtimeo = 2500000,
	                            .sk_sndtimeo = 1};
	t->fds[11].sk_addrlen = sizeof(l6);
	t->fds[11].sk_addr = malloc(t->fds[11].sk_addrlen);
	assert_non_null(t->fds[11].sk_addr);
	memcpy(t->fds[11].sk_addr, &l6, sizeof(l6));
	t->fds[12] = (struct cd_fd){.fd = 21,
	                            .kind = CD_FD_INET,
	                            .flags = 02,
	                            .obj = 15,
	                            .std = -1,
	                            .sk_family = AF_INET,
	                            .sk_type = SOCK_DGRAM,
	                            .sk_proto = IPPROTO_UDP,
	                            .sk_ino = 301,
	                            .sk_opts = CD_SKO_BROADCAST};
	t->fds[12].sk_paddrlen = sizeof(u4);
	t->fds[12].sk_paddr = malloc(t->fds[12].sk_paddrlen);
	assert_non_null(t->fds[12].sk_paddr);
	memcpy(t->fds[12].sk_paddr, &u4, sizeof(u4));
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK, .nl_groups = 1};
	t->fds[13] = (struct cd_fd){.fd = 22,
	                            .kind = CD_FD_NETLINK,
	                            .flags = 02,
	                            .obj = 16,
	                            .std = -1,
	                            .sk_family = AF_NETLINK,
	                            .sk_type = SOCK_RAW,
	                            .sk_proto = 0,
	                            .sk_ino = 302};
	t->fds[13].sk_addrlen = sizeof(nl);
	t->fds[13].sk_addr = malloc(t->fds[13].sk_addrlen);
	assert_non_null(t->fds[13].sk_addr);
	memcpy(t->fds[13].sk_addr, &nl, sizeof(nl));
	t->nfds = 14;
	json_t *j = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_non_null(j);
	return j;
}

static json_t *fd_n(json_t *j, size_t i)
{
	return json_array_get(json_object_get(task0(j), "fds"), i);
}

/* An image whose task (pid 42) has two pidfds of itself: fd 20 with
 * PIDFD_NONBLOCK, fd 21 with PIDFD_THREAD (O_EXCL). */
static json_t *with_pidfds(void)
{
	struct cd_image img;
	cd_err err = {0};

	make_image(&img);
	struct cd_task *t = &img.tasks[0];
	t->fds = realloc(t->fds, 6 * sizeof(*t->fds));
	assert_non_null(t->fds);
	t->fds[4] = (struct cd_fd){
	    .fd = 20, .kind = CD_FD_PIDFD, .flags = 02004002, .obj = 7, .std = -1, .pidfd_pid = 42};
	t->fds[5] = (struct cd_fd){
	    .fd = 21, .kind = CD_FD_PIDFD, .flags = 02000202, .obj = 8, .std = -1, .pidfd_pid = 42};
	t->nfds = 6;
	json_t *j = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_non_null(j);
	return j;
}

/* A pidfd's pid round-trips, present for that kind only; the decoder
 * refuses one out of range, missing, or of no task of the image, and the
 * kinds no file registers (16, 17). */
static void test_pidfds(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = with_pidfds();

	assert_null(json_object_get(fd_n(j, 0), "pidfd_pid"));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].fds[4].kind, CD_FD_PIDFD);
	assert_int_equal(img.tasks[0].fds[4].pidfd_pid, 42);
	assert_int_equal(img.tasks[0].fds[5].pidfd_pid, 42);
	assert_int_equal(img.tasks[0].fds[5].flags, 02000202);
	cd_image_free(&img);

	j = with_pidfds();
	json_object_set_new(fd_n(j, 4), "pidfd_pid", json_integer(0));
	expect_refused(j, "\"pidfd_pid\"");
	j = with_pidfds();
	json_object_del(fd_n(j, 5), "pidfd_pid");
	expect_refused(j, "\"pidfd_pid\"");
	j = with_pidfds();
	json_object_set_new(fd_n(j, 5), "pidfd_pid", json_integer(43));
	expect_refused(j, "\"pidfd_pid\": 43 is not a task of the image");
	j = with_pidfds();
	json_object_set_new(fd_n(j, 4), "kind", json_integer(CD_FD_KIND_MAX));
	expect_refused(j, "\"kind\"");
	/* the task's own thread 4242: a thread's pidfd of it, and a thread
	 * SIGIO owner; as a process it is no task of the image */
	j = with_pidfds();
	json_object_set_new(fd_n(j, 5), "pidfd_pid", json_integer(4242));
	json_object_set_new(fd_n(j, 4), "own_type", json_integer(0));
	json_object_set_new(fd_n(j, 4), "own_pid", json_integer(4242));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].fds[5].pidfd_pid, 4242);
	assert_int_equal(img.tasks[0].fds[4].own_pid, 4242);
	cd_image_free(&img);
	j = with_pidfds();
	json_object_set_new(fd_n(j, 4), "pidfd_pid", json_integer(4242));
	expect_refused(j, "\"pidfd_pid\": 4242 is not a task of the image");
	j = with_pidfds();
	json_object_set_new(fd_n(j, 4), "own_type", json_integer(1));
	json_object_set_new(fd_n(j, 4), "own_pid", json_integer(4242));
	expect_refused(j, "\"own_pid\": 4242 is not a task");
	(void)state;
}

/* A kind's own fields: present for that kind only, round-tripped whole
 * (64-bit values included), refused out of range or missing. */
/* fd 12 of with_event_fds made an established TCP connection 127.0.0.1:1000
 * -> 127.0.0.1:53 with its repair state. */
static json_t *with_tcp_conn(void)
{
	json_t *j = with_event_fds(), *c = json_object();
	json_t *f = fd_n(j, 12);
	static const struct {
		const char *name;
		long long v;
	} v[] = {{"snd_seq", -5},   {"rcv_seq", 7},    {"sndq", 3},  {"unsq", 1},
	         {"rcvq", 2},       {"mss", 65483},    {"topts", 7}, {"swscale", 7},
	         {"rwscale", 14},   {"tsval", 123456}, {"wl1", 9},   {"swnd", 65536},
	         {"maxwnd", 65536}, {"rwnd", 65536},   {"rwup", 8},  {"shut_rd", 1},
	         {"kidle", 77},     {"kintvl", 9},     {"kcnt", 4},  {"cork", 1}};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		json_object_set_new(c, v[i].name, json_integer(v[i].v));
	json_object_set_new(f, "sk_type", json_integer(SOCK_STREAM));
	json_object_set_new(f, "sk_proto", json_integer(IPPROTO_TCP));
	json_object_set_new(f, "sk_opts", json_integer(0));
	/* sockaddr_in 127.0.0.1:1000 */
	json_object_set_new(f, "sk_addr", json_string("020003e87f0000010000000000000000"));
	json_object_set_new(f, "sk_tcp", c);
	return j;
}

/* An established connection's repair state round-trips; lengths, options
 * and its place are checked. */
static void test_tcp_conn(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = with_tcp_conn();

	(void)state;
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	const struct cd_fd *d = &img.tasks[0].fds[12];
	assert_non_null(d->sk_tcp);
	assert_true(d->sk_tcp->snd_seq == (uint32_t)-5 && d->sk_tcp->rcv_seq == 7);
	assert_true(d->sk_tcp->sndq == 3 && d->sk_tcp->unsq == 1 && d->sk_tcp->rcvq == 2);
	assert_true(d->sk_tcp->mss == 65483 && d->sk_tcp->topts == 7 && d->sk_tcp->rwscale == 14);
	assert_true(d->sk_tcp->tsval == 123456 && d->sk_tcp->rwup == 8 && d->sk_tcp->shut_rd == 1);
	assert_true(d->sk_tcp->kidle == 77 && d->sk_tcp->kcnt == 4 && d->sk_tcp->cork == 1);
	/* and back through the encoder */
	j = cd_image_to_json(&img, &err);
	cd_image_free(&img);
	assert_non_null(j);
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_true(img.tasks[0].fds[12].sk_tcp &&
	            img.tasks[0].fds[12].sk_tcp->snd_seq == (uint32_t)-5);
	cd_image_free(&img);

	j = with_tcp_conn();
	json_object_set_new(json_object_get(fd_n(j, 12), "sk_tcp"), "unsq", json_integer(4));
	expect_refused(j, "unsq 4 is more than the send queue's 3 bytes");
	j = with_tcp_conn();
	json_object_set_new(json_object_get(fd_n(j, 12), "sk_tcp"), "rcvq",
	                    json_integer(CD_TCP_QUEUE_MAX + 1));
	expect_refused(j, "\"rcvq\"");
	j = with_tcp_conn();
	json_object_set_new(json_object_get(fd_n(j, 12), "sk_tcp"), "rwscale", json_integer(15));
	expect_refused(j, "\"rwscale\"");
	j = with_tcp_conn();
	json_object_del(json_object_get(fd_n(j, 12), "sk_tcp"), "wl1");
	expect_refused(j, "\"wl1\"");
	j = with_tcp_conn();
	json_object_set_new(fd_n(j, 12), "sk_tcp", json_integer(1));
	expect_refused(j, "field \"sk_tcp\": not an object");
	/* on a UDP socket, a listener, or without an address */
	j = with_tcp_conn();
	json_object_set_new(fd_n(j, 12), "sk_proto", json_integer(IPPROTO_UDP));
	json_object_set_new(fd_n(j, 12), "sk_type", json_integer(SOCK_DGRAM));
	expect_refused(j, "not on the first fd of a bound and connected TCP socket");
	j = with_tcp_conn();
	json_object_set_new(fd_n(j, 12), "sk_listen", json_integer(1));
	expect_refused(j, "not on the first fd of a bound and connected TCP socket");
	j = with_tcp_conn();
	json_object_set_new(fd_n(j, 12), "sk_addr", json_string(""));
	expect_refused(j, "not on the first fd of a bound and connected TCP socket");
}

static void test_event_fds(void **state)
{
	struct cd_image img;
	cd_err err = {0};
	json_t *j = with_event_fds();

	assert_null(json_object_get(fd0(j), "count"));
	assert_null(json_object_get(fd0(j), "sigmask"));
	assert_null(json_object_get(fd_n(j, 2), "sigmask"));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].fds[2].kind, CD_FD_EVENTFD);
	assert_true(img.tasks[0].fds[2].count == UINT64_MAX - 1);
	assert_true(img.tasks[0].fds[2].semaphore);
	assert_int_equal(img.tasks[0].fds[3].kind, CD_FD_SIGNALFD);
	assert_true(img.tasks[0].fds[3].sigmask == (1ULL << 63 | 0x201));
	assert_true(img.tasks[0].fds[0].count == 0 && img.tasks[0].fds[0].sigmask == 0);
	const struct cd_fd *tf = &img.tasks[0].fds[4];
	assert_int_equal(tf->tclock, CLOCK_REALTIME);
	assert_int_equal(tf->tflags, 3);
	assert_true(tf->ticks == 1ULL << 40);
	assert_true(tf->vsec == 1LL << 34 && tf->vnsec == 999999999);
	assert_true(tf->isec == 10 && tf->insec == 5);
	const struct cd_fd *ef = &img.tasks[0].fds[5];
	assert_int_equal(ef->nwatches, 2);
	assert_int_equal(ef->watches[0].tfd, 11);
	assert_true(ef->watches[0].events == 0x80000001u && ef->watches[0].data == UINT64_MAX);
	assert_true(ef->watches[1].tfd == 13 && ef->watches[1].events == 0x40000019u &&
	            ef->watches[1].data == 42);
	const struct cd_fd *nf = &img.tasks[0].fds[6];
	assert_int_equal(nf->niwatches, 2);
	assert_true(nf->iwatches[0].wd == 1 && nf->iwatches[0].mask == 0x80000100u);
	assert_string_equal(nf->iwatches[0].path, "/tmp");
	assert_true(nf->iwatches[1].wd == 2 && nf->iwatches[1].mask == 2);
	assert_string_equal(nf->iwatches[1].path, "/tmp/x");
	const struct cd_fd *uf = &img.tasks[0].fds[7];
	assert_int_equal(uf->kind, CD_FD_UNIX);
	assert_true(uf->sk_type == 5 && uf->sk_listen && uf->sk_passcred);
	assert_true(uf->sk_backlog == 4096 && uf->sk_rcvbuf == 131072 && uf->sk_sndbuf == 4608);
	assert_true(uf->sk_iuid == UINT32_MAX - 3 && uf->sk_igid == 1000);
	assert_int_equal(uf->sk_addrlen, 6);
	assert_memory_equal(uf->sk_addr, "\0cu\0d\xff", 6);
	uf = &img.tasks[0].fds[8];
	assert_true(uf->sk_type == 2 && !uf->sk_listen && !uf->sk_passcred);
	assert_true(uf->sk_mode == 01755 && uf->sk_uid == UINT32_MAX - 1 && uf->sk_gid == 7);
	assert_int_equal(uf->sk_addrlen, strlen("/run/x.sock"));
	assert_memory_equal(uf->sk_addr, "/run/x.sock", uf->sk_addrlen);
	assert_true(uf->sk_ino == UINT32_MAX && uf->sk_peer == 0 && uf->sk_nqueue == 0);
	uf = &img.tasks[0].fds[9];
	assert_true(uf->sk_ino == 200 && uf->sk_peer == 201 && uf->sk_shutdown == 2);
	assert_int_equal(uf->sk_nqueue, 2);
	assert_int_equal(uf->sk_queue[0].len, 2);
	assert_memory_equal(uf->sk_queue[0].data, "ab", 2);
	assert_true(uf->sk_queue[0].nfds == 1 && uf->sk_queue[0].fds[0] == 11);
	assert_int_equal(uf->sk_queue[1].len, 0);
	assert_true(uf->sk_queue[1].nfds == 0 && !uf->sk_queue[1].fds);
	assert_true(!uf->sk_queue[0].creds && uf->sk_queue[1].creds);
	assert_true(uf->sk_queue[1].cred_pid == 42 && uf->sk_queue[1].cred_uid == UINT32_MAX - 1 &&
	            uf->sk_queue[1].cred_gid == 100);
	assert_true(img.tasks[0].fds[10].sk_peer == 200 && img.tasks[0].fds[10].sk_shutdown == 1);
	const struct cd_fd *xf = &img.tasks[0].fds[11];
	assert_true(xf->kind == CD_FD_INET && xf->sk_family == AF_INET6 &&
	            xf->sk_type == SOCK_STREAM && xf->sk_proto == IPPROTO_TCP);
	assert_true(xf->sk_listen && xf->sk_backlog == 511 && xf->sk_ino == 300);
	assert_true(xf->sk_iuid == 1000 && xf->sk_igid == 1001 && xf->sk_rcvbuf == 131072);
	assert_true(xf->sk_opts == CD_SKO_ALL && xf->sk_linger == 3 && xf->sk_defer == 5);
	assert_true(xf->sk_rcvtimeo == 2500000 && xf->sk_sndtimeo == 1);
	assert_int_equal(xf->sk_addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(((const struct sockaddr_in6 *)xf->sk_addr)->sin6_port, htons(8080));
	xf = &img.tasks[0].fds[12];
	assert_true(xf->sk_proto == IPPROTO_UDP && xf->sk_opts == CD_SKO_BROADCAST);
	assert_true(xf->sk_addrlen == 0 && xf->sk_paddrlen == sizeof(struct sockaddr_in));
	assert_int_equal(((const struct sockaddr_in *)xf->sk_paddr)->sin_port, htons(53));
	xf = &img.tasks[0].fds[13];
	assert_true(xf->kind == CD_FD_NETLINK && xf->sk_type == SOCK_RAW);
	assert_int_equal(xf->sk_addrlen, sizeof(struct sockaddr_nl));
	assert_int_equal(((const struct sockaddr_nl *)xf->sk_addr)->nl_groups, 1);
	assert_null(json_object_get(fd0(j = with_event_fds()), "sk_addr"));
	json_decref(j);
	cd_image_free(&img);

	j = with_event_fds();
	json_object_set_new(fd_n(j, 2), "count", json_integer(-1));
	expect_refused(j, "\"count\": out of range");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 2), "semaphore", json_integer(2));
	expect_refused(j, "\"semaphore\"");
	j = with_event_fds();
	json_object_del(fd_n(j, 2), "count");
	expect_refused(j, "\"count\"");
	j = with_event_fds();
	json_object_del(fd_n(j, 3), "sigmask");
	expect_refused(j, "\"sigmask\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 4), "tclock", json_integer(CLOCK_REALTIME_ALARM));
	expect_refused(j, "\"tclock\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 4), "tclock", json_integer(CLOCK_PROCESS_CPUTIME_ID));
	expect_refused(j, "\"tclock\": 2 is not a clock");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 4), "tclock", json_integer(CLOCK_MONOTONIC));
	expect_refused(j, "cancel-on-set");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 4), "vnsec", json_integer(1000000000));
	expect_refused(j, "\"vnsec\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 4), "ticks", json_integer(-1));
	expect_refused(j, "\"ticks\"");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 5), "watches"), 0,
	                   json_pack("[i,i,i]", 99, 1, 0));
	expect_refused(j, "fd 99 is not another fd of the task");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 5), "watches"), 0,
	                   json_pack("[i,i,i]", 14, 1, 0));
	expect_refused(j, "fd 14 is not another fd of the task");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 5), "watches"), 0,
	                   json_pack("[i,i,i]", 11, 1 << 29, 0));
	expect_refused(j, "EPOLLWAKEUP");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 5), "watches"), 0,
	                   json_pack("[i,I,i]", 11, (json_int_t)1 << 32, 0));
	expect_refused(j, "watch.events");
	j = with_event_fds();
	json_object_del(fd_n(j, 5), "watches");
	expect_refused(j, "\"watches\"");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 6), "iwatches"), 1,
	                   json_pack("[i,i,s]", 3, 2, "/tmp/x"));
	expect_refused(j, "not watch 2");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 6), "iwatches"), 1,
	                   json_pack("[i,i,s]", 2, 2, "tmp/x"));
	expect_refused(j, "a relative path");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 6), "iwatches"), 1,
	                   json_pack("[i,i,i]", 2, 2, 7));
	expect_refused(j, "\"iwatch.path\"");
	j = with_event_fds();
	json_array_set_new(json_object_get(fd_n(j, 6), "iwatches"), 1,
	                   json_pack("[i,i,s]", 0, 2, "/tmp/x"));
	expect_refused(j, "iwatch.wd");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 7), "sk_type", json_integer(3));
	expect_refused(j, "\"sk_type\": 3");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_listen", json_integer(1));
	expect_refused(j, "a listening datagram socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_addr", json_string("72756e"));
	expect_refused(j, "not an absolute path");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_addr", json_string("2f0078"));
	expect_refused(j, "not an absolute path");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_addr", json_string("2f7"));
	expect_refused(j, "odd hex length");
	j = with_event_fds();
	json_object_del(fd_n(j, 7), "sk_addr");
	expect_refused(j, "\"sk_addr\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 7), "sk_backlog", json_integer(-1));
	expect_refused(j, "\"sk_backlog\"");
	/* inet and netlink: family, protocol, addresses, options of their kind */
	j = with_event_fds();
	json_object_set_new(fd_n(j, 11), "sk_proto", json_integer(IPPROTO_UDP));
	expect_refused(j, "not a TCP or UDP socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 11), "sk_family", json_integer(AF_PACKET));
	expect_refused(j, "not a TCP or UDP socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 11), "sk_addr", json_string("0a00"));
	expect_refused(j, "not an address of family 10");
	j = with_event_fds();
	json_object_set_new(
	    fd_n(j, 12), "sk_paddr",
	    json_string("0a001f90000000000000000000000000000000000000000000000000"));
	expect_refused(j, "not an address of family 2");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 12), "sk_listen", json_integer(1));
	expect_refused(j, "a state or an option of another kind of socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 12), "sk_opts", json_integer(CD_SKO_V6ONLY));
	expect_refused(j, "a state or an option of another kind of socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 11), "sk_opts", json_integer(CD_SKO_ALL + 1));
	expect_refused(j, "\"sk_opts\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 13), "sk_proto", json_integer(32));
	expect_refused(j, "not a netlink socket's fields");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 13), "sk_addr", json_string("100000000100000001000000"));
	expect_refused(j, "not a netlink address of no port");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_mode", json_integer(010000));
	expect_refused(j, "\"sk_mode\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 10), "sk_peer", json_integer(100));
	expect_refused(j, "connected back to it");
	/* credentials of a pid that is not a task of the image, or of uid -1 */
	j = with_event_fds();
	json_object_set_new(json_array_get(json_object_get(fd_n(j, 9), "sk_queue"), 1), "creds",
	                    json_pack("{s:i, s:i, s:i}", "pid", 4242, "uid", 0, "gid", 0));
	expect_refused(j, "creds: not in the queue of a connected socket, or of pid 4242");
	j = with_event_fds();
	json_object_set_new(
	    json_array_get(json_object_get(fd_n(j, 9), "sk_queue"), 1), "creds",
	    json_pack("{s:i, s:I, s:i}", "pid", 42, "uid", (json_int_t)UINT32_MAX, "gid", 0));
	expect_refused(j, "\"uid\"");
	/* a client waiting in the accept queue of fd 7's listener */
	j = with_event_fds();
	{
		struct cd_image pend;
		cd_err perr = {0};
		json_object_set_new(fd_n(j, 9), "sk_peer", json_integer(0));
		json_object_set_new(fd_n(j, 9), "sk_shutdown", json_integer(0));
		json_object_set_new(fd_n(j, 9), "sk_queue", json_array());
		json_object_set_new(fd_n(j, 10), "sk_type", json_integer(5));
		json_object_set_new(fd_n(j, 10), "sk_peer", json_integer(100));
		json_object_set_new(fd_n(j, 10), "sk_shutdown", json_integer(0));
		assert_int_equal(cd_image_from_json(j, &pend, &perr), 0);
		assert_int_equal(pend.tasks[0].fds[10].sk_peer, 100);
		cd_image_free(&pend);
		/* with a shutdown: not what a client waiting to be accepted has */
		json_object_set_new(fd_n(j, 10), "sk_shutdown", json_integer(1));
		expect_refused(j, "a client of the listener");
	}
	j = with_event_fds();
	json_object_set_new(fd_n(j, 10), "sk_peer", json_integer(999));
	expect_refused(j, "connected back to it");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 10), "sk_type", json_integer(5));
	expect_refused(j, "connected back to it");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 10), "sk_ino", json_integer(200));
	expect_refused(j, "\"sk_ino\": 200 is another open file's");
	/* a pair's ends in two tasks (the first that holds one makes it) */
	j = with_event_fds();
	{
		json_t *t1 = json_deep_copy(task0(j)), *fds = json_object_get(task0(j), "fds");
		struct cd_image two;
		cd_err two_err = {0};
		json_object_set_new(t1, "pid", json_integer(43));
		json_object_set_new(t1, "ppid", json_integer(42));
		json_object_set_new(t1, "pages_file", json_string("pages-43.img"));
		json_object_set_new(t1, "posix_timers", json_array());
		json_object_set_new(t1, "locks", json_array());
		json_object_set_new(t1, "threads", json_array());
		json_object_set_new(t1, "fds", json_pack("[O]", json_array_get(fds, 10)));
		json_array_remove(fds, 10);
		json_array_append_new(json_object_get(j, "tasks"), t1);
		assert_int_equal(cd_image_from_json(j, &two, &two_err), 0);
		assert_int_equal(two.tasks[1].fds[0].sk_peer, 200);
		cd_image_free(&two);
	}
	json_decref(j);
	j = with_event_fds();
	/* unread datagrams are a bound dgram socket's, not a stream's */
	json_object_set_new(fd_n(j, 8), "sk_queue", json_pack("[{s:s}]", "data", "00"));
	json_object_set_new(fd_n(j, 8), "sk_type", json_integer(1));
	expect_refused(j, "or a queue of one that is not a bound datagram socket");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_shutdown", json_integer(1));
	expect_refused(j, "a shutdown of a socket that is not connected");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_queue", json_pack("[{s:s}]", "data", "00"));
	{
		struct cd_image dq;
		cd_err dq_err = {0};
		assert_int_equal(cd_image_from_json(j, &dq, &dq_err), 0);
		assert_int_equal(dq.tasks[0].fds[8].sk_nqueue, 1);
		assert_int_equal(dq.tasks[0].fds[8].sk_queue[0].len, 1);
		cd_image_free(&dq);
	}
	json_decref(j);
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue", json_pack("[{s:s}]", "data", "0"));
	expect_refused(j, "odd hex length");
	/* fds in flight: open files of the image that may travel, in a
	 * connected socket's queue, 1 to 253 of them */
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue",
	                    json_pack("[{s:s,s:[i]}]", "data", "00", "fds", 99));
	expect_refused(j, "is not an open file of the image that may travel");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue",
	                    json_pack("[{s:s,s:[i]}]", "data", "00", "fds", 12));
	expect_refused(j, "12 is not an open file of the image that may travel");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue", json_pack("[{s:s,s:[]}]", "data", "00", "fds"));
	expect_refused(j, "fds");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue",
	                    json_pack("[{s:s,s:[i]}]", "data", "00", "fds", 2));
	expect_refused(j, "fds");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 8), "sk_queue",
	                    json_pack("[{s:s,s:[i]}]", "data", "00", "fds", 11));
	expect_refused(j, "fds in flight in the queue of a socket that is not connected back");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_queue", json_pack("[s]", "00"));
	expect_refused(j, "not an object");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_shutdown", json_integer(4));
	expect_refused(j, "\"sk_shutdown\"");
	j = with_event_fds();
	json_object_set_new(fd_n(j, 9), "sk_ino", json_integer(1LL << 32));
	expect_refused(j, "\"sk_ino\"");
	j = with_event_fds();
	{
		/* 108 bytes of path: no room for its NUL */
		char hex[2 * 108 + 1];
		for (int i = 0; i < 108; i++)
			memcpy(hex + 2 * i, i ? "61" : "2f", 2);
		hex[216] = 0;
		json_object_set_new(fd_n(j, 8), "sk_addr", json_string(hex));
		expect_refused(j, "not an absolute path");
		j = with_event_fds();
		char big[2 * 109 + 1];
		memset(big, '6', sizeof(big) - 1);
		big[218] = 0;
		json_object_set_new(fd_n(j, 7), "sk_addr", json_string(big));
		expect_refused(j, "\"sk_addr\"");
	}
}

static void test_refuses_repeated_ids(void **state)
{
	json_t *j = encoded();
	json_t *fds = json_object_get(task0(j), "fds");

	json_array_append_new(fds, json_deep_copy(json_array_get(fds, 0)));
	expect_refused(j, "\"fd\": 7 repeated");
	j = encoded();
	json_array_append_new(json_object_get(j, "tasks"), json_deep_copy(task0(j)));
	expect_refused(j, "\"pid\": 42 repeated");
}

static json_t *thread0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "threads"), 0);
}

static void test_refuses_bad_threads(void **state)
{
	json_t *j = encoded();
	json_t *threads = json_object_get(task0(j), "threads");

	/* a tid twice, a tid that is a task's pid, the main thread's tid */
	json_array_append_new(threads, json_deep_copy(json_array_get(threads, 0)));
	expect_refused(j, "\"tid\": 4242 repeated");
	j = encoded();
	json_t *task = json_deep_copy(task0(j));
	json_object_set_new(task, "pid", json_integer(4242));
	json_object_set_new(task, "threads", json_array());
	json_object_set_new(task, "posix_timers", json_array());
	json_array_append_new(json_object_get(j, "tasks"), task);
	expect_refused(j, "\"tid\": 4242 repeated");
	j = encoded();
	json_object_set_new(thread0(j), "tid", json_integer(42));
	expect_refused(j, "\"tid\": 42 is the main thread's");
	j = encoded();
	json_object_set_new(thread0(j), "tid", json_integer(0));
	expect_refused(j, "tid");
	j = encoded();
	json_object_set_new(thread0(j), "nice", json_integer(20));
	expect_refused(j, "nice");
	j = encoded();
	json_object_set_new(thread0(j), "sched_policy", json_integer(6));
	expect_refused(j, "sched_policy");
	j = encoded();
	json_object_del(thread0(j), "regs");
	expect_refused(j, "regs");
	j = encoded();
	json_object_set_new(thread0(j), "affinity", json_array());
	expect_refused(j, "affinity");
	/* a timer aims at a thread of its own task only; without "tid", the task */
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(task0(j), "posix_timers"), 0), "tid",
	                    json_integer(4243));
	expect_refused(j, "\"tid\": 4243 is not a thread of the task");
	j = encoded();
	json_object_set_new(task0(j), "threads", json_array());
	expect_refused(j, "\"tid\": 4242 is not a thread of the task");
	j = encoded();
	json_object_del(json_array_get(json_object_get(task0(j), "posix_timers"), 0), "tid");
	struct cd_image img;
	cd_err err = {0};
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].timers[0].tid, 42);
	cd_image_free(&img);
	j = encoded();
	threads = json_object_get(task0(j), "threads");
	for (int i = 0; i < CD_MAX_THREADS; i++)
		json_array_append_new(threads, json_null());
	expect_refused(j, "\"threads\": 16385 elements, expected 0 to 16384");
}

static void test_without_threads(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	/* an image from before threads: a task of one thread */
	json_object_del(task0(j), "threads");
	json_object_del(json_array_get(json_object_get(task0(j), "posix_timers"), 0), "tid");
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].nthreads, 0);
	cd_image_free(&img);
}

/* The plugins that took part: round-trips, and what a decoder refuses. */
static void test_plugins(void **state)
{
	struct cd_image img, back;
	cd_err err = {0};

	make_image(&img);
	struct cd_image_plugin *p = cd_image_plugin_get(&img, "gpu");
	assert_non_null(p);
	p->pids = malloc(sizeof(*p->pids));
	p->pids[p->npids++] = 42;
	assert_ptr_equal(cd_image_plugin_get(&img, "gpu"), p);
	json_t *j = cd_image_to_json(&img, &err);
	assert_non_null(j);
	assert_int_equal(cd_image_from_json(j, &back, &err), 0);
	assert_int_equal(back.nplugins, 1);
	assert_string_equal(back.plugins[0].name, "gpu");
	assert_int_equal(back.plugins[0].npids, 1);
	assert_int_equal(back.plugins[0].pids[0], 42);
	cd_image_free(&back);
	json_decref(j);
	/* none: not written at all (images no plugin took part in are unchanged) */
	cd_image_plugins_free(&img);
	j = cd_image_to_json(&img, &err);
	assert_null(json_object_get(j, "plugins"));
	json_decref(j);
	cd_image_free(&img);

	static const char *const bad[][2] = {
	    {"[{\"name\": \"GPU\", \"pids\": [42]}]", "is not a plugin name"},
	    {"[{\"name\": \"\", \"pids\": [42]}]", "is not a plugin name"},
	    {"[{\"name\": \"gpu\", \"pids\": [43]}]", "pid 43 is not a live task"},
	    {"[{\"name\": \"gpu\", \"pids\": [42, 42]}]", "42 repeated"},
	    {"[{\"name\": \"gpu\", \"pids\": []}]", "pids"},
	    {"[{\"name\": \"gpu\", \"pids\": [42]}, {\"name\": \"gpu\", \"pids\": [42]}]",
	     "gpu repeated"},
	    {"[{\"name\": \"gpu\"}]", "pids"},
	    {"{}", "plugins"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = encoded();
		json_object_set_new(j, "plugins", json_loads(bad[i][0], 0, NULL));
		expect_refused(j, bad[i][1]);
	}
}

static json_t *vpol0(json_t *j)
{
	return json_array_get(json_object_get(task0(j), "vma_policies"), 0);
}

/* A NUMA policy: what set_mempolicy and mbind take, on a whole private
 * mapping of the task, in order. */
static void test_refuses_bad_mempolicy(void **state)
{
	json_t *j = encoded();

	json_object_set_new(json_object_get(task0(j), "mempolicy"), "mode", json_integer(7));
	expect_refused(j, "\"mode\"");
	j = encoded();
	json_object_set_new(json_object_get(task0(j), "mempolicy"), "flags", json_integer(3 << 14));
	expect_refused(j, "both static and relative");
	j = encoded();
	json_object_set_new(json_object_get(thread0(j), "mempolicy"), "flags", json_integer(1));
	expect_refused(j, "\"flags\"");
	j = encoded();
	json_object_set_new(json_object_get(thread0(j), "mempolicy"), "mode", json_integer(0));
	expect_refused(j, "on default");
	j = encoded();
	json_object_set_new(json_object_get(thread0(j), "mempolicy"), "mode", json_integer(4));
	expect_refused(j, "on local");
	j = encoded();
	json_array_set_new(json_object_get(vpol0(j), "nodes"), 0, json_integer(0));
	expect_refused(j, "mode 2 without nodes");
	j = encoded();
	json_object_set_new(vpol0(j), "flags", json_integer(1 << 13));
	json_object_set_new(vpol0(j), "mode", json_integer(3));
	expect_refused(j, "NUMA balancing");
	j = encoded();
	json_object_set_new(json_object_get(task0(j), "mempolicy"), "nodes", json_array());
	expect_refused(j, "\"nodes\"");
	/* the second mapping (a private file mapping), but not whole; shared memory;
	 * no mapping; twice; the default, which is no policy */
	j = encoded();
	json_object_set_new(vpol0(j), "end", json_integer(0x22000));
	expect_refused(j, "20000-22000 is not a private mapping of the task");
	j = encoded();
	json_object_set_new(json_array_get(json_object_get(task0(j), "vmas"), 1), "kind",
	                    json_integer(CD_VMA_FILE_SHARED));
	expect_refused(j, "20000-21000 is not a private mapping of the task");
	j = encoded();
	json_object_set_new(vpol0(j), "start", json_integer(0x30000));
	json_object_set_new(vpol0(j), "end", json_integer(0x31000));
	expect_refused(j, "is not a private mapping");
	j = encoded();
	json_t *vp = json_object_get(task0(j), "vma_policies");
	json_array_append_new(vp, json_deep_copy(json_array_get(vp, 0)));
	expect_refused(j, "out of order");
	j = encoded();
	json_object_set_new(vpol0(j), "mode", json_integer(0));
	json_object_set_new(vpol0(j), "nodes",
	                    json_loads("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", 0, NULL));
	expect_refused(j, "default is no policy of its own");
}

/* A stop by a stop signal only; a stop to report only for a stopped task;
 * an image from before stopped tasks: running. */
static void test_stopped(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	json_object_set_new(task0(j), "stop_sig", json_integer(SIGUSR1));
	expect_refused(j, "\"stop_sig\": 10 is not a stop signal");
	j = encoded();
	json_object_set_new(task0(j), "stop_sig", json_integer(0));
	expect_refused(j, "\"stop_notify\": the task is not stopped");
	j = encoded();
	json_object_set_new(task0(j), "stop_sig", json_integer(65));
	expect_refused(j, "\"stop_sig\"");
	j = encoded();
	json_object_del(task0(j), "stop_sig");
	json_object_del(task0(j), "stop_notify");
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].stop_sig, 0);
	assert_false(img.tasks[0].stop_notify);
	cd_image_free(&img);
}

static json_t *filter0(json_t *j)
{
	return json_array_get(json_object_get(json_object_get(task0(j), "seccomp"), "filters"), 0);
}

/* seccomp: a mode, filters only (and at least one) in filter mode, whole
 * instructions, BPF_MAXINSNS at most, flags LOG and SPEC_ALLOW; without
 * "seccomp", none. */
static void test_seccomp(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};
	char hex[2 * 8 * 4097 + 1];

	json_object_set_new(json_object_get(task0(j), "seccomp"), "mode", json_integer(3));
	expect_refused(j, "\"mode\"");
	j = encoded();
	json_object_set_new(json_object_get(task0(j), "seccomp"), "mode", json_integer(1));
	expect_refused(j, "\"filters\"");
	j = encoded();
	json_object_set_new(json_object_get(task0(j), "seccomp"), "filters", json_array());
	expect_refused(j, "\"filters\"");
	j = encoded();
	json_object_set_new(filter0(j), "insns", json_string("00112233"));
	expect_refused(j, "not whole instructions");
	j = encoded();
	json_object_set_new(filter0(j), "insns", json_string(""));
	expect_refused(j, "not whole instructions");
	j = encoded();
	memset(hex, '0', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = 0;
	json_object_set_new(filter0(j), "insns", json_string(hex));
	expect_refused(j, "\"insns\"");
	j = encoded();
	json_object_set_new(filter0(j), "flags", json_integer(1));
	expect_refused(j, "TSYNC");
	j = encoded();
	json_object_set_new(filter0(j), "flags", json_integer(8));
	expect_refused(j, "\"flags\"");
	j = encoded();
	json_object_del(task0(j), "seccomp");
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].seccomp_mode, 0);
	assert_int_equal(img.tasks[0].nfilters, 0);
	cd_image_free(&img);
}

/* An image from before NUMA policies: the default everywhere. */
static void test_without_mempolicy(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	json_object_del(task0(j), "mempolicy");
	json_object_del(task0(j), "vma_policies");
	json_object_del(thread0(j), "mempolicy");
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	json_decref(j);
	assert_int_equal(img.tasks[0].mempolicy.mode, 0);
	assert_int_equal(img.tasks[0].nvpols, 0);
	assert_int_equal(img.tasks[0].threads[0].mempolicy.mode, 0);
	cd_image_free(&img);
}

static void test_refuses_bad_siginfo(void **state)
{
	char hex[257];
	json_t *j = encoded();

	memset(hex, '0', 256);
	hex[256] = 0;
	json_array_append_new(json_object_get(task0(j), "pending"),
	                      json_pack("{s:s}", "siginfo", hex));
	expect_refused(j, "signal 0 out of range");
	j = encoded();
	json_array_append_new(json_object_get(task0(j), "pending"),
	                      json_pack("{s:s}", "siginfo", "0a"));
	expect_refused(j, "\"siginfo\": 1 bytes");
}

static void test_refuses_count_over_limit(void **state)
{
	json_t *j = encoded();
	json_t *groups = json_object_get(task0(j), "groups");

	for (int i = 0; i <= CD_MAX_GROUPS; i++)
		json_array_append_new(groups, json_integer(i));
	expect_refused(j, "\"groups\": 65537 elements, expected 0 to 65536");
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

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Issue 11 item 6: a 1.7 GB manifest grew the process to 2.4 GB. One over
 * the limit is refused by its size alone, before a byte is read. */
static void test_refuses_oversized_manifest(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	struct cd_image img;
	cd_err err = {0};

	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = openat(dirfd, CD_IMAGE_MANIFEST, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)CD_MANIFEST_MAX + 1), 0); /* sparse */
	close(fd);
	double t0 = now();
	assert_true(cd_image_read_manifest(dirfd, &img, &err) < 0);
	assert_true(now() - t0 < 0.5);
	assert_int_equal(err.code, EFBIG);
	if (!strstr(err.msg, "limit of 67108864 bytes"))
		fail_msg("error \"%s\" does not name the limit", err.msg);
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	close(dirfd);
	rmdir(dir);
}

/* A link or a FIFO in place of the manifest is refused, not followed or
 * waited on. */
static void test_refuses_manifest_not_regular(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	struct cd_image img;
	cd_err err = {0};

	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(symlinkat("/etc/passwd", dirfd, CD_IMAGE_MANIFEST), 0);
	assert_true(cd_image_read_manifest(dirfd, &img, &err) < 0);
	assert_int_equal(err.code, ELOOP);
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	assert_int_equal(mkfifoat(dirfd, CD_IMAGE_MANIFEST, 0600), 0);
	assert_true(cd_image_read_manifest(dirfd, &img, &err) < 0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	close(dirfd);
	rmdir(dir);
}

/* The manifest read back whole through the new reader. */
static void test_reads_manifest(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	json_t *j = encoded();
	char *s = json_dumps(j, JSON_COMPACT);
	struct cd_image img;
	cd_err err = {0};

	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(write_file(dirfd, CD_IMAGE_MANIFEST, s, strlen(s)), 0);
	assert_int_equal(cd_image_read_manifest(dirfd, &img, &err), 0);
	assert_int_equal(img.tasks[0].pid, 42);
	cd_image_free(&img);
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	close(dirfd);
	rmdir(dir);
	free(s);
	json_decref(j);
}

/* The image decoded from text through the reader's parse (runs quoted),
 * encoded again. */
static char *parsed_again(const char *text)
{
	struct cd_image img;
	cd_err err = {0};

	if (cd_image_decode_manifest(text, strlen(text), &img, &err) < 0)
		fail_msg("%s", err.msg);
	json_t *j = cd_image_to_json(&img, &err);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	cd_image_free(&img);
	return s;
}

/* The reader leaves the writer's lists of runs to a parser of its own,
 * as strings (image.c, cut_runs): the image is the same as jansson's
 * lists give, in the writer's compact form and in any other (spaces:
 * jansson's), and a SysV segment's pairs are left as lists. */
static void test_reads_runs_as_text(void **state)
{
	json_t *j = encoded_sysv();
	/* two lists of runs: each mapping reads its own */
	json_t *vma1 = json_array_get(json_object_get(task0(j), "vmas"), 1);
	json_object_set_new(vma1, "runs", json_pack("[[iii]]", 0, 1, CD_RUN_DATA));
	json_object_set_new(task0(j), "pages_size", json_integer(3 * CD_PAGE_SIZE));
	char *compact = json_dumps(j, JSON_COMPACT), *spaced = json_dumps(j, JSON_INDENT(2));
	char *a = parsed_again(compact), *b = parsed_again(spaced);

	assert_string_equal(a, compact);
	assert_string_equal(b, compact);
	free(a);
	free(b);
	free(spaced);
	free(compact);
	/* a segment with no data: its empty list stays a list (cut, it was
	 * left a placeholder where pairs are read: an image refused) */
	json_object_set_new(sysv0(j), "runs", json_array());
	json_object_set_new(sysv0(j), "pages_size", json_integer(0));
	compact = json_dumps(j, JSON_COMPACT);
	a = parsed_again(compact);
	assert_string_equal(a, compact);
	free(a);
	free(compact);
	json_decref(j);
}

/* text decoded as a lazy restore reads it, every mapping's runs then
 * read from their text, encoded again; NULL where it is refused (err). */
static char *lazy_parsed_again(const char *text, cd_err *err)
{
	struct cd_image img;

	if (cd_image_decode_manifest_lazy(text, strlen(text), &img, err) < 0)
		return NULL;
	for (size_t i = 0; i < img.ntasks; i++)
		for (size_t k = 0; k < img.tasks[i].nvmas; k++)
			assert_int_equal(cd_vma_runs_load(&img.tasks[i].vmas[k], err), 0);
	json_t *j = cd_image_to_json(&img, err);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	cd_image_free(&img);
	return s;
}

/* Whether vma0 of text, read as a lazy restore reads it, keeps its runs as
 * text; the image is the plain read's once they are read. */
static bool lazy_keeps_vma0(json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT), *plain = parsed_again(text), *again;
	struct cd_image img;
	cd_err err = {0};

	assert_int_equal(cd_image_decode_manifest_lazy(text, strlen(text), &img, &err), 0);
	const struct cd_vma *v = &img.tasks[0].vmas[0];
	bool kept = v->later.text != NULL;
	if (kept) {
		assert_int_equal(v->nruns, 0);
		assert_null(v->runs);
		assert_int_equal(cd_vma_data_bytes(v), 2 * CD_PAGE_SIZE);
	}
	cd_image_free(&img);
	again = lazy_parsed_again(text, &err);
	assert_non_null(again);
	assert_string_equal(again, plain);
	free(again);
	free(plain);
	free(text);
	json_decref(j);
	return kept;
}

/* A lazy restore's read keeps the runs of a mapping its server fills as
 * text (cd_vma.later): a private anonymous mapping, not locked, wipe-on-
 * fork, shared or grow-down, with data and only data and zero runs, of a
 * task no child shares pages with. */
static void test_lazy_read_keeps_runs_as_text(void **state)
{
	json_t *j = encoded();
	/* make_image's vma0 is locked and wipe-on-fork */
	assert_false(lazy_keeps_vma0(json_deep_copy(j)));
	json_object_set_new(vma0(j), "flags", json_integer(0));
	assert_true(lazy_keeps_vma0(json_deep_copy(j)));
	json_t *k = json_deep_copy(j);
	json_object_set_new(vma0(k), "runs",
	                    json_pack("[[iii][iii]]", 0, 2, CD_RUN_DATA, 2, 1, CD_RUN_GUARD));
	assert_false(lazy_keeps_vma0(k));
	k = json_deep_copy(j);
	json_object_set_new(vma0(k), "growsdown", json_integer(1));
	assert_false(lazy_keeps_vma0(k));
	/* a child shares vma0 copy-on-write: its parent's runs are read */
	k = json_deep_copy(j);
	json_t *t1 = json_deep_copy(task0(k));
	json_object_set_new(t1, "pid", json_integer(43));
	json_object_set_new(t1, "ppid", json_integer(42));
	json_object_set_new(t1, "pages_file", json_string("pages-43.img"));
	json_object_set_new(t1, "pages_size", json_integer(0));
	json_object_set_new(t1, "fds", json_array());
	json_object_set_new(t1, "posix_timers", json_array());
	json_object_set_new(t1, "locks", json_array());
	json_object_set_new(t1, "threads", json_array());
	json_object_set_new(json_array_get(json_object_get(t1, "vmas"), 0), "runs",
	                    json_pack("[[iii][iii]]", 0, 2, CD_RUN_PARENT, 2, 1, CD_RUN_ZERO));
	json_array_append_new(json_object_get(k, "tasks"), t1);
	assert_false(lazy_keeps_vma0(k));
	/* what the plain read refuses, the lazy one refuses in its words */
	const char *bad[] = {"[[2,1,1],[0,2,0]]", "[[0,2,0],[2,3,1]]", "[[0,2,0],[1,1,1]]",
	                     "[[0,2,0],[2,1,5]]", "[[0,0,0],[2,1,1]]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		json_t *b = json_deep_copy(j);
		struct cd_image img;
		cd_err err = {0}, lerr = {0};
		json_object_set_new(vma0(b), "runs", json_loads(bad[i], 0, NULL));
		char *text = json_dumps(b, JSON_COMPACT);
		assert_true(cd_image_decode_manifest(text, strlen(text), &img, &err) < 0);
		assert_null(lazy_parsed_again(text, &lerr));
		assert_string_equal(err.msg, lerr.msg);
		free(text);
		json_decref(b);
	}
	json_decref(j);
}

/* A text that holds \u0001 itself is not cut (every placeholder must be
 * the reader's): a name with it reads the same, and a placeholder
 * written into the manifest is refused, not taken for a cut list. */
static void test_runs_placeholder_not_forged(void **state)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	json_object_set_new(task0(j), "comm", json_string("a\001b"));
	char *text = json_dumps(j, JSON_COMPACT), *again = parsed_again(text);
	assert_non_null(strstr(text, "\\u0001"));
	assert_string_equal(again, text);
	free(again);
	free(text);
	json_object_set_new(vma0(j), "runs",
	                    json_string("\x01"
	                                "0"));
	text = json_dumps(j, JSON_COMPACT);
	assert_true(cd_image_decode_manifest(text, strlen(text), &img, &err) < 0);
	assert_non_null(strstr(err.msg, "not a list of [page, npages, src] triples"));
	free(text);
	json_decref(j);
}

/* vma0's runs given as text refuse what the list would, in its words. */
static void expect_runs_refused(const char *text, const char *list, const char *needle)
{
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0}, lerr = {0};

	json_object_set_new(vma0(j), "runs", json_string(text));
	assert_true(cd_image_from_json(j, &img, &err) < 0);
	cd_image_free(&img);
	if (!strstr(err.msg, needle))
		fail_msg("runs \"%s\": error \"%s\" does not mention \"%s\"", text, err.msg,
		         needle);
	if (list) {
		json_object_set_new(vma0(j), "runs", json_loads(list, 0, NULL));
		assert_true(cd_image_from_json(j, &img, &lerr) < 0);
		cd_image_free(&img);
		assert_string_equal(err.msg, lerr.msg);
	}
	json_decref(j);
}

static void test_refuses_bad_runs_text(void **state)
{
	static const char *const syntax[] = {
	    "",
	    "[",
	    "[[0,2,0]",
	    "[[0,2]]",
	    "[[0,2]",
	    "[[0,2,0],[1",
	    "[[0,2,0]][",
	    "[[0,2,0,1]]",
	    "[[00,2,0]]",
	    "[[0, 2,0]]",
	    "[[0,2,0],]",
	    "[[-1,2,0]]",
	    "[[0,2,0]] ",
	    "[[0,2.0,0]]",
	    "[[0,2,0]][]",
	    "[[9223372036854775808,1,0]]",
	    "{}",
	    /* past INT64_MAX with 19 digits, and with 20 (2^64 would wrap to 0) */
	    "[[9999999999999999999,1,0]]",
	    "[[18446744073709551616,1,0]]",
	    "[[0,01,0]]",
	};
	json_t *j = encoded();
	struct cd_image img;
	cd_err err = {0};

	for (size_t i = 0; i < sizeof(syntax) / sizeof(*syntax); i++)
		expect_runs_refused(syntax[i], NULL, "not a list of [page, npages, src] triples");
	expect_runs_refused("[[0,0,0]]", "[[0,0,0]]", "\"runs[1]\": 0 out of range");
	expect_runs_refused("[[0,1,9]]", "[[0,1,9]]", "\"runs[2]\": 9 out of range");
	expect_runs_refused("[[1,1,0],[0,1,0]]", "[[1,1,0],[0,1,0]]", "out of order");
	expect_runs_refused("[[0,2,0],[1,1,1]]", "[[0,2,0],[1,1,1]]", "out of order");
	expect_runs_refused("[[9223372036854775807,1,0]]", "[[9223372036854775807,1,0]]",
	                    "outside its mapping");
	/* the same runs as text decode as the list */
	json_object_set_new(vma0(j), "runs", json_string("[[0,2,0],[2,1,1]]"));
	assert_int_equal(cd_image_from_json(j, &img, &err), 0);
	assert_int_equal(img.tasks[0].vmas[0].nruns, 2);
	assert_int_equal(img.tasks[0].vmas[0].runs[1].page, 2);
	assert_int_equal(img.tasks[0].vmas[0].runs[1].src, CD_RUN_ZERO);
	cd_image_free(&img);
	json_object_set_new(vma0(j), "runs", json_string("[]"));
	assert_true(cd_image_from_json(j, &img, &err) < 0); /* the page file is not empty */
	cd_image_free(&img);
	json_decref(j);
}

/* cd_image_write_manifest writes the mappings' runs itself (image.c): the
 * bytes are jansson's compact encoding of the same image, and the
 * checksum it returns is the one the manifest reads back with. A path
 * holding the placeholder's text, a mapping without runs and large run
 * values are in it. */
static void test_writes_manifest_as_jansson(void **state)
{
	char dir[] = "/tmp/test_image.XXXXXX";
	struct cd_image img;
	cd_err err = {0};
	uint64_t hash = 0, back = 1;
	char buf[1 << 16];

	make_image(&img);
	struct cd_task *t = &img.tasks[0];
	free(t->vmas[0].runs);
	t->vmas[0].nruns = 1000;
	t->vmas[0].runs = calloc(1000, sizeof(struct cd_run));
	assert_non_null(t->vmas[0].runs);
	for (size_t i = 0; i < 1000; i++)
		t->vmas[0].runs[i] =
		    (struct cd_run){i * 1000003ULL + (1ULL << 40), i + 1, (uint8_t)(i % 5)};
	free(t->vmas[1].path);
	t->vmas[1].path = strdup("/tmp/x,\"runs\":\"\x01\"");
	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(cd_image_write_manifest(&img, dirfd, &hash, &err), 0);
	json_t *j = cd_image_to_json(&img, &err);
	char *want = json_dumps(j, JSON_COMPACT);
	int fd = openat(dirfd, CD_IMAGE_MANIFEST, O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, buf, sizeof(buf));
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_int_equal((size_t)n, strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
	assert_int_equal(cd_image_manifest_hash(dirfd, &back, &err), 0);
	assert_true(back == hash);
	close(fd);
	free(want);
	json_decref(j);
	cd_image_free(&img);
	unlinkat(dirfd, CD_IMAGE_MANIFEST, 0);
	close(dirfd);
	rmdir(dir);
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
	/* memfd 1's contents file: 100 bytes, checked too */
	img.memfds[1].len = 100;
	cd_csum_init(&c);
	cd_csum_update(&c, pages, 100);
	img.memfds[1].csum = cd_csum_final(&c);
	assert_int_equal(write_file(dirfd, "memfd-1.img", pages, 100), 0);
	/* and a memfd only mapped (memfd 3; 4: empty) */
	img.memfds[3].len = 100;
	img.memfds[3].csum = img.memfds[1].csum;
	assert_int_equal(write_file(dirfd, "memfd-3.img", pages, 100), 0);
	cd_csum_init(&c);
	img.memfds[4].csum = cd_csum_final(&c);
	assert_int_equal(write_file(dirfd, "memfd-4.img", pages, 0), 0);
	cd_csum_init(&c);
	img.deleted[2].csum = cd_csum_final(&c);
	assert_int_equal(write_file(dirfd, "deleted-2.img", pages, 0), 0);
	assert_int_equal(cd_image_verify_pages(&img, dirfd, NULL, &err), 0);
	assert_int_equal(cd_image_check_pages(&img, dirfd, NULL, &err), 0);
	assert_int_equal(write_file(dirfd, "memfd-1.img", pages, 99), 0);
	assert_true(cd_image_check_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "memfd-1.img: truncated"));
	assert_int_equal(write_file(dirfd, "memfd-1.img", pages, 100), 0);
	assert_int_equal(write_file(dirfd, "memfd-3.img", pages, 99), 0);
	assert_true(cd_image_check_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "memfd-3.img: truncated"));
	assert_int_equal(write_file(dirfd, "memfd-3.img", pages, 100), 0);
	pages[7] ^= 1;
	assert_int_equal(write_file(dirfd, "memfd-1.img", pages, 100), 0);
	pages[7] ^= 1;
	assert_true(cd_image_check_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "memfd-1.img: checksum"));
	assert_int_equal(write_file(dirfd, "memfd-1.img", pages, 100), 0);
	pages[5000] ^= 1;
	assert_int_equal(write_file(dirfd, "pages-42.img", pages, sizeof(pages)), 0);
	assert_true(cd_image_verify_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "checksum"));
	assert_int_equal(write_file(dirfd, "pages-42.img", pages, 4096), 0);
	assert_true(cd_image_verify_pages(&img, dirfd, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "truncated"));
	cd_image_free(&img);
	unlinkat(dirfd, "pages-42.img", 0);
	unlinkat(dirfd, "memfd-1.img", 0);
	unlinkat(dirfd, "memfd-3.img", 0);
	unlinkat(dirfd, "memfd-4.img", 0);
	unlinkat(dirfd, "deleted-2.img", 0);
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

/* Parts of a file's checksum, read in any order, by any reader, add up to
 * the checksum of the whole; a changed byte or a part left out does not. */
static void test_checksum_parts(void **state)
{
	static uint8_t buf[3 * 4096];
	struct cd_csum_part p1 = {0}, p2 = {0}, none = {0};
	const uint64_t size = sizeof(buf);
	struct cd_csum whole;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + i / 4096);
	cd_csum_init(&whole);
	cd_csum_update(&whole, buf, sizeof(buf));
	/* pages 2, 0 and 1, in two readers */
	cd_csum_part_add(&p1, buf + 8192, 4096, 8192, size);
	cd_csum_part_add(&p2, buf, 4096, 0, size);
	cd_csum_part_add(&p1, buf + 4096, 4096, 4096, size);
	cd_csum_part_merge(&p1, &p2);
	assert_int_equal(cd_csum_part_final(&p1, size), cd_csum_final(&whole));
	/* a page left out */
	cd_csum_part_add(&none, buf, 8192, 0, size);
	assert_int_not_equal(cd_csum_part_final(&none, size), cd_csum_final(&whole));
	/* the same words at another place */
	struct cd_csum_part moved = {0};
	cd_csum_part_add(&moved, buf + 4096, 4096, 0, size);
	cd_csum_part_add(&moved, buf, 4096, 4096, size);
	cd_csum_part_add(&moved, buf + 8192, 4096, 8192, size);
	assert_int_not_equal(cd_csum_part_final(&moved, size), cd_csum_final(&whole));
	/* the empty file */
	struct cd_csum empty;
	cd_csum_init(&empty);
	assert_int_equal(cd_csum_part_final(&(struct cd_csum_part){0}, 0), cd_csum_final(&empty));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_checksum_parts),
	    cmocka_unit_test(test_refuses_bad_threads),
	    cmocka_unit_test(test_without_threads),
	    cmocka_unit_test(test_plugins),
	    cmocka_unit_test(test_refuses_bad_mempolicy),
	    cmocka_unit_test(test_without_mempolicy),
	    cmocka_unit_test(test_stopped),
	    cmocka_unit_test(test_seccomp),
	    cmocka_unit_test(test_std_slot),
	    cmocka_unit_test(test_event_fds),
	    cmocka_unit_test(test_pidfds),
	    cmocka_unit_test(test_refuses_other_version),
	    cmocka_unit_test(test_refuses_other_format),
	    cmocka_unit_test(test_refuses_runs_not_matching_page_file),
	    cmocka_unit_test(test_refuses_run_outside_mapping),
	    cmocka_unit_test(test_refuses_page_file_path),
	    cmocka_unit_test(test_refuses_fixed_array_of_other_length),
	    cmocka_unit_test(test_refuses_negative_index),
	    cmocka_unit_test(test_refuses_bad_memfd),
	    cmocka_unit_test(test_sysv_shm_round_trip),
	    cmocka_unit_test(test_refuses_bad_sysv_shm),
	    cmocka_unit_test(test_memfd_mapping_name),
	    cmocka_unit_test(test_aio_ring_vma),
	    cmocka_unit_test(test_refuses_bad_deleted),
	    cmocka_unit_test(test_refuses_object_id_out_of_range),
	    cmocka_unit_test(test_refuses_non_integer_element),
	    cmocka_unit_test(test_refuses_wrong_type),
	    cmocka_unit_test(test_refuses_integer_out_of_c_range),
	    cmocka_unit_test(test_refuses_integer_out_of_meaning),
	    cmocka_unit_test(test_refuses_enum_out_of_range),
	    cmocka_unit_test(test_refuses_bad_string),
	    cmocka_unit_test(test_refuses_bad_mapping),
	    cmocka_unit_test(test_refuses_missing_pipe),
	    cmocka_unit_test(test_refuses_repeated_ids),
	    cmocka_unit_test(test_refuses_bad_fd_state),
	    cmocka_unit_test(test_refuses_bad_siginfo),
	    cmocka_unit_test(test_refuses_count_over_limit),
	    cmocka_unit_test(test_refuses_truncated_manifest),
	    cmocka_unit_test(test_refuses_session_plan),
	    cmocka_unit_test(test_session_plan),
	    cmocka_unit_test(test_zombie),
	    cmocka_unit_test(test_refuses_oversized_manifest),
	    cmocka_unit_test(test_refuses_manifest_not_regular),
	    cmocka_unit_test(test_reads_manifest),
	    cmocka_unit_test(test_reads_runs_as_text),
	    cmocka_unit_test(test_lazy_read_keeps_runs_as_text),
	    cmocka_unit_test(test_runs_placeholder_not_forged),
	    cmocka_unit_test(test_refuses_bad_runs_text),
	    cmocka_unit_test(test_writes_manifest_as_jansson),
	    cmocka_unit_test(test_page_file_checks),
	    cmocka_unit_test(test_checksum_incremental),
	    cmocka_unit_test(test_refuses_bad_posix_timer),
	    cmocka_unit_test(test_refuses_bad_lock),
	    cmocka_unit_test(test_reads_image_without_timers_and_locks),
	    cmocka_unit_test(test_refuses_vma_flags_of_no_mapping),
	    cmocka_unit_test(test_guard_runs),
	    cmocka_unit_test(test_tcp_conn),
	    cmocka_unit_test(test_parent),
	    cmocka_unit_test(test_pages_layout),
	    cmocka_unit_test(test_streams_none),
	    cmocka_unit_test(test_streams_lz4),
	    cmocka_unit_test(test_streams_zstd),
	    cmocka_unit_test(test_stream_layout_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
