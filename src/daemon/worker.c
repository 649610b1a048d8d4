#include "daemon/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job/manager.h"
#include "shared/cleanup.h"
#include "shared/log.h"

/* The fds a worker keeps: the kind's (at most the dump's 2 + 64 trackers)
 * and the op's page. */
#define WORKER_FDS 72

struct worker_exec {
	char *argv[5];
	const int *keep;
	size_t nkeep;
	struct op_shared *op;
};

/* In the forked child, which may only make async-signal-safe calls (a lock
 * taken here could be one another thread of the daemon held at the fork):
 * the message and errno's digits by hand. */
static void exec_failed(struct op_shared *op, int e)
{
	static const char msg[] = "worker: could not exec /proc/self/exe: errno ";
	char digits[12];
	size_t n = 0, len = sizeof(msg) - 1;

	op->err.code = e;
	memcpy(op->err.msg, msg, len);
	do
		digits[n++] = (char)('0' + e % 10);
	while ((e /= 10) > 0 && n < sizeof(digits));
	while (n > 0)
		op->err.msg[len++] = digits[--n];
	op->err.msg[len] = '\0';
}

static int exec_worker(void *arg)
{
	struct worker_exec *w = arg;

	for (size_t i = 0; i < w->nkeep; i++)
		if (w->keep[i] >= 0 && fcntl(w->keep[i], F_SETFD, 0) < 0) {
			exec_failed(w->op, errno);
			return 127;
		}
	execv("/proc/self/exe", w->argv);
	exec_failed(w->op, errno);
	return 127;
}

int cr_worker_spawn(struct api *api, const char *kind, json_t *args, struct op_shared *op,
                    const int *fds, size_t nfds, pid_t *ret_pid, cd_err *err)
{
	int keep[WORKER_FDS];
	size_t nkeep = 0;

	if (nfds >= WORKER_FDS)
		return cd_err_set(err, E2BIG, "%s: %zu fds for the worker", kind, nfds);
	for (; nkeep < nfds; nkeep++)
		keep[nkeep] = fds[nkeep];
	keep[nkeep++] = op_fd(op);
	if (json_object_set_new(args, "op_fd", json_integer(op_fd(op))) < 0 ||
	    json_object_set_new(args, "log_level", json_integer(log_get_level())) < 0)
		return cd_err_sys(err, ENOMEM, "%s: the worker's arguments", kind);
	_cleanup_free_ char *text = json_dumps(args, JSON_COMPACT);
	if (!text)
		return cd_err_sys(err, ENOMEM, "%s: the worker's arguments", kind);
	struct worker_exec w = {.argv = {"cedana", CR_WORKER_ARG, (char *)kind, text, NULL},
	                        .keep = keep,
	                        .nkeep = nkeep,
	                        .op = op};

	return job_manager_fork_worker(api->jm, exec_worker, &w, keep, nkeep, ret_pid, err);
}

static int worker_fail(const char *what, const char *detail)
{
	fprintf(stderr, "cedana: %s%s\n", what, detail);
	return 2;
}

int cr_worker_main(int argc, char **argv)
{
	json_int_t fd = -1, level = LOG_LVL_INFO;
	struct op_shared *op;
	json_error_t je = {0};
	json_t *args;
	cd_err err = {0};

	if (argc != 4)
		return worker_fail(CR_WORKER_ARG, " is the daemon's own: not a command");
	/* as in a forked worker, what it was given is not passed on to what it
	 * runs (the lazy server, a helper) */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	/* the worker runs until it exits: args is never freed */
	args = json_loads(argv[3], JSON_REJECT_DUPLICATES, &je);
	if (!args ||
	    json_unpack_ex(args, &je, 0, "{s:I, s:I}", "op_fd", &fd, "log_level", &level) < 0 ||
	    fd < 0 || fd > INT32_MAX || level < LOG_LVL_ERROR || level > LOG_LVL_TRACE)
		return worker_fail("worker: bad arguments: ", je.text);
	log_set_level((enum log_level)level);
	op = op_map((int)fd, &err);
	if (!op)
		return worker_fail("worker: ", err.msg);
	if (strcmp(argv[2], "dump") == 0)
		return cr_dump_worker_main(args, op);
	if (strcmp(argv[2], "restore") == 0)
		return cr_restore_worker_main(args, op);
	return worker_fail("worker: no kind ", argv[2]);
}
