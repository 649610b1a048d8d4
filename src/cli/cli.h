#pragma once

/* Entry point of the command line; returns the process exit code. */
int cli_main(int argc, char **argv);
