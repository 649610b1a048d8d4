#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <cmocka.h>

#include "cli/table.h"
#include "job/codec.h"
#include "job/frame.h"
#include "job/proc.h"

static void test_job_to_json(void **state)
{
	struct db_job job = {.pid = 7,
	                     .uid = 1000,
	                     .cmd = "[\"a\",\"b c\"]",
	                     .attachable = true,
	                     .has_exit_code = true,
	                     .exit_code = 3};
	struct db_checkpoint cp = {.time = 5, .size = 2048, .path = "/c"};
	json_t *j;

	strcpy(job.jid, "x");
	strcpy(job.type, "process");
	strcpy(cp.compression, "none");
	j = job_to_json(&job, "halted", &cp);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "jid")), "x");
	assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
	assert_true(json_is_null(json_object_get(j, "log")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "cmd"), 1)), "b c");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "checkpoint"), "size")), 2048);
	json_decref(j);
	job.has_exit_code = false;
	j = job_to_json(&job, "running", NULL);
	assert_true(json_is_null(json_object_get(j, "exit_code")));
	assert_true(json_is_null(json_object_get(j, "checkpoint")));
	json_decref(j);
}

static void test_argv_json_and_exit_codes(void **state)
{
	char *argv[] = {"python3", "-c", "print(\"hi\")", NULL};
	char *text = job_argv_to_json(argv);

	assert_string_equal(text, "[\"python3\",\"-c\",\"print(\\\"hi\\\")\"]");
	free(text);
	assert_int_equal(job_exit_code(3 << 8), 3);
	assert_int_equal(job_exit_code(SIGKILL), 128 + 9);
}

static void test_frames(void **state)
{
	static struct frame_reader rd;
	unsigned char data[FRAME_MAX_DATA];
	unsigned char wire[] = {'o', 0, 0, 0, 2, 'h', 'i', 'x', 0, 0, 0, 4, 0, 0, 0, 42};
	size_t len;
	char type;

	assert_int_equal(frame_feed(&rd, wire, 6), 0);
	assert_int_equal(frame_next(&rd, &type, data, &len), 0); /* incomplete */
	assert_int_equal(frame_feed(&rd, wire + 6, sizeof(wire) - 6), 0);
	assert_int_equal(frame_next(&rd, &type, data, &len), 1);
	assert_int_equal(type, 'o');
	assert_memory_equal(data, "hi", 2);
	assert_int_equal(frame_next(&rd, &type, data, &len), 1);
	assert_int_equal(type, 'x');
	assert_int_equal(frame_u32(data), 42);
	assert_int_equal(frame_next(&rd, &type, data, &len), 0);
	wire[1] = 0xff; /* a length beyond the limit */
	assert_int_equal(frame_feed(&rd, wire, 5), 0);
	assert_int_equal(frame_next(&rd, &type, data, &len), -EPROTO);
}

/* A stream of the largest frames, read in chunks bounded by
 * frame_reader_room() as both ends of attach do, never overflows the reader. */
static void test_frame_stream_of_max_frames(void **state)
{
	static struct frame_reader rd;
	static unsigned char wire[3 * (FRAME_HEADER + FRAME_MAX_DATA)];
	static unsigned char data[FRAME_MAX_DATA];
	size_t off = 0, len, frames = 0;
	char type;
	int r;

	for (size_t i = 0; i < 3; i++) {
		unsigned char *f = wire + i * (FRAME_HEADER + FRAME_MAX_DATA);

		f[0] = FRAME_INPUT;
		f[1] = 0;
		f[2] = (unsigned char)(FRAME_MAX_DATA >> 16);
		f[3] = (unsigned char)(FRAME_MAX_DATA >> 8);
		f[4] = (unsigned char)FRAME_MAX_DATA;
		memset(f + FRAME_HEADER, 'a' + (int)i, FRAME_MAX_DATA);
	}
	while (off < sizeof(wire)) {
		size_t room = frame_reader_room(&rd);
		size_t chunk = sizeof(wire) - off < 16384 ? sizeof(wire) - off : 16384;

		assert_true(room > 0);
		if (chunk > room)
			chunk = room;
		assert_int_equal(frame_feed(&rd, wire + off, chunk), 0);
		off += chunk;
		while ((r = frame_next(&rd, &type, data, &len)) > 0) {
			assert_int_equal(len, FRAME_MAX_DATA);
			assert_int_equal(data[0], 'a' + (int)frames);
			frames++;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(frames, 3);
}

static void test_table(void **state)
{
	json_t *jobs = json_loads("[{\"jid\":\"a\",\"type\":\"process\",\"pid\":12,\"status\":"
	                          "\"sleep\",\"gpu\":false,\"attachable\":true,\"log\":null,"
	                          "\"checkpoint\":{\"time\":100,\"size\":659456}}]",
	                          0, NULL);
	char buf[1024] = "", age[64], size[64];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	table_print_jobs(f, jobs, 102);
	fclose(f);
	assert_non_null(strstr(buf, "JOB  TYPE     PID  STATUS  GPU  CHECKPOINT     SIZE     LOG"));
	assert_non_null(strstr(buf, "2 seconds ago  644 KiB  [Attachable]"));
	json_decref(jobs);
	table_age(age, sizeof(age), 0, 7200);
	assert_string_equal(age, "2 hours ago");
	table_size(size, sizeof(size), 1536LL << 20);
	assert_string_equal(size, "1.5 GiB");
}

static void test_proc_self(void **state)
{
	struct proc_stat st;
	struct proc_ids ids;
	cd_err err = {0};

	assert_int_equal(proc_read_stat(getpid(), &st, &err), 0);
	assert_int_equal(st.state, 'R');
	assert_true(st.start_time > 0);
	assert_int_equal(proc_read_ids(getpid(), &ids, &err), 0);
	assert_int_equal(ids.uid[0], getuid());
	assert_int_equal(proc_read_stat(0x3fffffff, &st, &err), -ENOENT);
	assert_string_equal(proc_state_name('T'), "stopped");
	assert_string_equal(proc_state_name('S'), "sleep");
}

/* The GPU column's helper, with a temporary file standing in for
 * /dev/nvidia*: an fd, a mapping, or a child's fd all count. */
static void test_proc_tree_holds(void **state)
{
	char path[] = "/tmp/cedana-holds-XXXXXX", other[64];
	int fd = mkstemp(path), pipefd[2];
	char c = 0;
	void *map;
	pid_t child;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	snprintf(other, sizeof(other), "%s-none", path);
	assert_true(proc_tree_holds(getpid(), path));
	assert_false(proc_tree_holds(getpid(), other));

	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);
	assert_true(proc_tree_holds(getpid(), path));
	munmap(map, 4096);
	assert_false(proc_tree_holds(getpid(), path));

	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int cfd = open(path, O_RDONLY);
		if (write(pipefd[1], &c, 1) != 1 || cfd < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_true(proc_tree_holds(getpid(), path));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_false(proc_tree_holds(getpid(), path));
	assert_false(proc_tree_holds(0, path));
	close(pipefd[0]);
	close(pipefd[1]);
	unlink(path);
}

static bool dead(pid_t pid)
{
	struct proc_stat st;
	cd_err err = {0};

	return proc_read_stat(pid, &st, &err) < 0 || st.state == 'Z';
}

/* proc_signal_tree reaches a grandchild through its parent's children: a
 * child that forks one and says its pid, both killed by one call. */
static void test_proc_signal_tree(void **state)
{
	int pipefd[2];
	pid_t child, grandchild = 0;

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pid_t g = fork();
		if (g == 0) {
			pause();
			_exit(0);
		}
		if (g < 0 || write(pipefd[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pipefd[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));
	proc_signal_tree(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* orphaned, the grandchild is reaped by init (slowly here): gone or dead */
	for (int i = 0; i < 500 && !dead(grandchild); i++)
		usleep(10000);
	assert_true(dead(grandchild));
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_job_to_json),
	    cmocka_unit_test(test_argv_json_and_exit_codes),
	    cmocka_unit_test(test_frames),
	    cmocka_unit_test(test_frame_stream_of_max_frames),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_proc_self),
	    cmocka_unit_test(test_proc_tree_holds),
	    cmocka_unit_test(test_proc_signal_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
