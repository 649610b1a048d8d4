#include "cli/progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/table.h"

#define SHOW_AFTER_S 1.0

struct call {
	const struct cd_config *cfg;
	const char *path;
	json_t *body;
	json_t *reply;
	cd_err err;
	int r;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *call_thread(void *arg)
{
	struct call *c = arg;
	json_t *reply = NULL;
	int r = client_call(c->cfg, "POST", c->path, c->body, &reply, &c->err);

	pthread_mutex_lock(&c->lock);
	c->r = r;
	c->reply = reply;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void progress_draw(const char *phase, uint64_t done, uint64_t total, double seconds)
{
	char d[32], t[32], rate[32];

	table_size(d, sizeof(d), (long long)done);
	table_size(t, sizeof(t), (long long)total);
	/* a rate over less than half a second says little */
	if (seconds >= 0.5)
		table_size(rate, sizeof(rate), (long long)((double)done / seconds));
	if (total && seconds >= 0.5)
		fprintf(stderr, "\r\033[K%s  %s / %s  %s/s  %.0f s", phase, d, t, rate, seconds);
	else if (total)
		fprintf(stderr, "\r\033[K%s  %s / %s", phase, d, t);
	else if (done && seconds >= 0.5)
		fprintf(stderr, "\r\033[K%s  %s  %s/s  %.0f s", phase, d, rate, seconds);
	else
		fprintf(stderr, "\r\033[K%s  %.0f s", phase, seconds);
	fflush(stderr);
}

void progress_clear(void)
{
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

/* One poll of the daemon: phase, bytes and seconds into the phase. */
static void poll_once(const struct cd_config *cfg, const char *op_path)
{
	json_t *p = NULL;
	cd_err e = {0};
	const char *ph;

	if (client_call(cfg, "GET", op_path, NULL, &p, &e) < 0)
		return;
	ph = json_string_value(json_object_get(p, "phase"));
	if (ph && ph[0])
		progress_draw(ph, (uint64_t)json_integer_value(json_object_get(p, "done")),
		              (uint64_t)json_integer_value(json_object_get(p, "total")),
		              json_real_value(json_object_get(p, "seconds")));
	json_decref(p);
}

/* After how long the line appears; CEDANA_PROGRESS_AFTER (seconds) lets
 * tests see it on a short operation. */
static double show_after(void)
{
	const char *v = getenv("CEDANA_PROGRESS_AFTER");

	return v && *v ? atof(v) : SHOW_AFTER_S;
}

static void wait_with_progress(struct call *c, const char *op_path)
{
	double start = now_s(), after = show_after();
	bool drawn = false;

	pthread_mutex_lock(&c->lock);
	while (!c->done) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cond, &c->lock, &until);
		if (c->done || now_s() - start < after)
			continue;
		pthread_mutex_unlock(&c->lock);
		poll_once(c->cfg, op_path);
		drawn = true;
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	if (drawn)
		progress_clear();
}

int progress_call(const struct cd_config *cfg, const char *path, json_t *body, json_t **ret,
                  cd_err *err)
{
	struct call c = {.cfg = cfg, .path = path, .body = body};
	unsigned char rnd[8] = {0};
	char op[64], op_path[96];
	pthread_t thread;

	if (!isatty(STDERR_FILENO))
		return client_call(cfg, "POST", path, body, ret, err);
	if (getrandom(rnd, sizeof(rnd), 0) < 0)
		memset(rnd, 0, sizeof(rnd));
	snprintf(op, sizeof(op), "cli-%d-%02x%02x%02x%02x", (int)getpid(), rnd[0], rnd[1], rnd[2],
	         rnd[3]);
	snprintf(op_path, sizeof(op_path), "/v1/ops/%s", op);
	json_object_set_new(body, "op", json_string(op));
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	if (pthread_create(&thread, NULL, call_thread, &c) != 0) {
		pthread_mutex_destroy(&c.lock);
		pthread_cond_destroy(&c.cond);
		return client_call(cfg, "POST", path, body, ret, err);
	}
	wait_with_progress(&c, op_path);
	pthread_join(thread, NULL);
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.cond);
	if (c.r < 0) {
		*err = c.err;
		return c.r;
	}
	if (ret)
		*ret = c.reply;
	else
		json_decref(c.reply);
	return 0;
}

void progress_print_timings(FILE *f, json_t *timings)
{
	size_t i;
	json_t *t;

	fprintf(f, "profiling:\n");
	json_array_foreach(timings, i, t)
	{
		fprintf(f, "  %-52s %10.1f ms\n", json_string_value(json_object_get(t, "name")),
		        json_real_value(json_object_get(t, "ms")));
	}
}
