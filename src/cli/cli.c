#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void print_usage(FILE *out)
{
	fputs("Usage: cedana [--version] [--help] COMMAND [ARGS...]\n", out);
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("cedana version %s\n", CEDANA_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_usage(stdout);
		return 0;
	}
	fprintf(stderr, "Error: unknown command \"%s\" for \"cedana\"\n", argv[1]);
	return 2;
}
