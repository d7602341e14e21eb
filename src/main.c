/* The `strata` executable: everything lives in the library; see cli/cli.h. */
#include "cli/cli.h"

int main(int argc, char **argv) { return strata_cli_main(argc, argv); }
