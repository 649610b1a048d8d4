/* Archive unpacking: a restore unpacks a user's checkpoint archive as
 * root. The input is written to a temporary file with an archive suffix
 * (the format is detected from the content) and unpacked into a
 * temporary directory, which is removed again. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "storage/storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz_unpack.XXXXXX";
static char input[64], dest[64];

static void cleanup(void)
{
	cd_err err = {0};

	storage_remove(dest, &err);
	unlink(input);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* a small input can inflate to gigabytes: writes past 64 MiB fail
	 * with EFBIG instead of filling the disk */
	struct rlimit fsize = {64 << 20, 64 << 20};

	signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &fsize);
	if (!mkdtemp(dir))
		abort();
	snprintf(input, sizeof(input), "%s/input.tar", dir);
	snprintf(dest, sizeof(dest), "%s/out", dir);
	atexit(cleanup);
	return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
	int fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, size);
	close(fd);
	return n == (ssize_t)size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cd_err err = {0};

	if (write_input(data, size) < 0)
		abort();
	storage_unpack(input, dest, NULL, NULL, NULL, &err);
	storage_remove(dest, &err);
	unlink(input);
	return 0;
}
