#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/worker.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], CR_WORKER_ARG) == 0)
		_exit(cr_worker_main(argc, argv) & 0xff);
	return cli_main(argc, argv);
}
