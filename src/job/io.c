#include "job/io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "job/frame.h"
#include "shared/cleanup.h"
#include "shared/log.h"

struct job_io {
	pthread_t thread;
	pthread_mutex_t lock;
	int wake; /* eventfd: something below changed */

	/* handed over under lock, taken by the thread */
	int new_client;
	job_io_close_fn new_close;
	void *new_close_arg;
	unsigned char *new_extra;
	size_t new_extra_len;
	bool exit_pending;
	int exit_code;
	bool stop;

	/* owned by the thread */
	int master;
	int client;
	job_io_close_fn client_close_fn;
	void *client_close_arg;
	bool exited;
	struct frame_reader reader;
	unsigned char *pending;
	size_t pending_len;
};

static void pending_append(struct job_io *io, const unsigned char *data, size_t len)
{
	if (len >= JOB_IO_BUFFER_MAX) {
		data += len - JOB_IO_BUFFER_MAX;
		len = JOB_IO_BUFFER_MAX;
	}
	if (io->pending_len + len > JOB_IO_BUFFER_MAX) {
		size_t drop = io->pending_len + len - JOB_IO_BUFFER_MAX;

		/* keep the newest output */
		memmove(io->pending, io->pending + drop, io->pending_len - drop);
		io->pending_len -= drop;
	}
	memcpy(io->pending + io->pending_len, data, len);
	io->pending_len += len;
}

static void close_sock(int sock, job_io_close_fn fn, void *arg)
{
	if (sock < 0)
		return;
	if (fn)
		fn(arg);
	else
		close(sock);
}

static void client_close(struct job_io *io)
{
	close_sock(io->client, io->client_close_fn, io->client_close_arg);
	io->client = -1;
	io->client_close_fn = NULL;
	io->reader.len = 0;
}

static void client_send(struct job_io *io, const unsigned char *data, size_t len)
{
	while (len && io->client >= 0) {
		size_t chunk = len > FRAME_MAX_DATA ? FRAME_MAX_DATA : len;

		if (frame_write(io->client, FRAME_OUTPUT, data, chunk) < 0)
			client_close(io);
		data += chunk;
		len -= chunk;
	}
}

static void output(struct job_io *io, const unsigned char *data, size_t len)
{
	if (io->client >= 0)
		client_send(io, data, len);
	else
		pending_append(io, data, len);
}

/* After exit the client gets the rest of the output and the code, then is hung up. */
static void finish_client(struct job_io *io)
{
	if (io->client < 0 || !io->exited)
		return;
	frame_write_exit(io->client, io->exit_code);
	client_close(io);
}

static void client_take(struct job_io *io, int sock, job_io_close_fn fn, void *arg)
{
	client_close(io);
	io->client = sock;
	io->client_close_fn = fn;
	io->client_close_arg = arg;
	if (io->pending_len) {
		client_send(io, io->pending, io->pending_len);
		io->pending_len = 0;
	}
	finish_client(io);
}

/* Returns false when the master has hung up (every slave fd closed). */
static bool master_read(struct job_io *io)
{
	unsigned char buf[16384];
	ssize_t n = read(io->master, buf, sizeof(buf));

	if (n > 0) {
		output(io, buf, n);
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

static void master_close(struct job_io *io)
{
	if (io->master >= 0)
		close(io->master);
	io->master = -1;
}

/* Output written just before the exit may still be in flight through the
 * pty: read until the master hangs up or stays quiet. */
static void master_drain(struct job_io *io)
{
	struct pollfd p = {.fd = io->master, .events = POLLIN};

	while (io->master >= 0 && poll(&p, 1, 100) > 0)
		if (!master_read(io))
			break;
	master_close(io);
}

static void client_input(struct job_io *io, const unsigned char *data, size_t len)
{
	unsigned char payload[FRAME_MAX_DATA];
	size_t plen;
	char type;
	int r;

	if (frame_feed(&io->reader, data, len) < 0) {
		client_close(io);
		return;
	}
	while ((r = frame_next(&io->reader, &type, payload, &plen)) > 0) {
		if (type == FRAME_INPUT && io->master >= 0) {
			if (write(io->master, payload, plen) < 0)
				log_debug("attach: write to the job's terminal: %m");
		} else if (type == FRAME_RESIZE && plen == 4 && io->master >= 0) {
			struct winsize ws = {
			    .ws_row = (unsigned short)(payload[0] << 8 | payload[1]),
			    .ws_col = (unsigned short)(payload[2] << 8 | payload[3])};
			ioctl(io->master, TIOCSWINSZ, &ws);
		}
	}
	if (r < 0)
		client_close(io);
}

static void client_read(struct job_io *io)
{
	unsigned char buf[16384];
	size_t room = frame_reader_room(&io->reader);
	ssize_t n = read(io->client, buf, room < sizeof(buf) ? room : sizeof(buf));

	if (n > 0)
		client_input(io, buf, n);
	else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		client_close(io); /* detached */
}

/* Applies what attach/exited/free handed over; returns false to stop. */
static bool take_handoffs(struct job_io *io)
{
	_cleanup_free_ unsigned char *extra = NULL;
	size_t extra_len;
	job_io_close_fn close_fn;
	bool stop, exited;
	void *close_arg;
	uint64_t v;
	int client;

	if (read(io->wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("attach: eventfd: %m");
	pthread_mutex_lock(&io->lock);
	stop = io->stop;
	client = io->new_client;
	io->new_client = -1;
	close_fn = io->new_close;
	close_arg = io->new_close_arg;
	extra = TAKE_PTR(io->new_extra);
	extra_len = io->new_extra_len;
	io->new_extra_len = 0;
	exited = io->exit_pending && !io->exited;
	pthread_mutex_unlock(&io->lock);
	if (stop) {
		close_sock(client, close_fn, close_arg);
		return false;
	}
	if (exited) {
		io->exited = true;
		master_drain(io);
		finish_client(io);
	}
	if (client >= 0) {
		client_take(io, client, close_fn, close_arg);
		if (io->client >= 0 && extra && extra_len)
			client_input(io, extra, extra_len);
	}
	return true;
}

static void *relay(void *arg)
{
	struct job_io *io = arg;

	for (;;) {
		struct pollfd p[3] = {
		    {.fd = io->wake, .events = POLLIN},
		    {.fd = io->master, .events = POLLIN},
		    {.fd = io->client, .events = POLLIN},
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("attach relay: poll: %m");
			break;
		}
		if (p[0].revents && !take_handoffs(io))
			break;
		if (p[1].revents && io->master >= 0 && !io->exited && !master_read(io))
			master_close(io); /* the job may live on without a terminal */
		if (p[2].revents && io->client >= 0 && p[2].fd == io->client)
			client_read(io);
	}
	return NULL;
}

static void wake(struct job_io *io)
{
	uint64_t one = 1;

	if (write(io->wake, &one, sizeof(one)) < 0)
		log_debug("attach: eventfd: %m");
}

int job_io_start(int master, struct job_io **ret_io, cd_err *err)
{
	struct job_io *io = calloc(1, sizeof(*io));
	int r;

	if (!io || !(io->pending = malloc(JOB_IO_BUFFER_MAX))) {
		free(io);
		close(master);
		return cd_err_sys(err, ENOMEM, "attach buffer");
	}
	io->master = master;
	io->client = io->new_client = -1;
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	io->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->wake < 0) {
		r = cd_err_sys(err, errno, "eventfd");
		goto fail;
	}
	pthread_mutex_init(&io->lock, NULL);
	r = -pthread_create(&io->thread, NULL, relay, io);
	if (r < 0) {
		cd_err_sys(err, -r, "start the attach relay");
		pthread_mutex_destroy(&io->lock);
		close(io->wake);
		goto fail;
	}
	*ret_io = io;
	return 0;
fail:
	close(master);
	free(io->pending);
	free(io);
	return r;
}

void job_io_attach(struct job_io *io, int sock, const void *extra, size_t extra_len,
                   job_io_close_fn close_fn, void *close_arg)
{
	unsigned char *copy = NULL;

	if (extra_len && (copy = malloc(extra_len)))
		memcpy(copy, extra, extra_len);
	pthread_mutex_lock(&io->lock);
	close_sock(io->new_client, io->new_close, io->new_close_arg);
	free(io->new_extra);
	io->new_client = sock;
	io->new_close = close_fn;
	io->new_close_arg = close_arg;
	io->new_extra = copy;
	io->new_extra_len = copy ? extra_len : 0;
	pthread_mutex_unlock(&io->lock);
	wake(io);
}

void job_io_exited(struct job_io *io, int code)
{
	pthread_mutex_lock(&io->lock);
	io->exit_pending = true;
	io->exit_code = code;
	pthread_mutex_unlock(&io->lock);
	wake(io);
}

void job_io_free(struct job_io *io)
{
	if (!io)
		return;
	pthread_mutex_lock(&io->lock);
	io->stop = true;
	pthread_mutex_unlock(&io->lock);
	wake(io);
	pthread_join(io->thread, NULL);
	client_close(io);
	master_close(io);
	close_sock(io->new_client, io->new_close, io->new_close_arg);
	free(io->new_extra);
	close(io->wake);
	pthread_mutex_destroy(&io->lock);
	free(io->pending);
	free(io);
}
