// relaygate: wiring only; everything else lives in the libraries shared with the tests.
#include "cli/cli.h"

int main(int argc, char** argv) { return rg::runCli(argc, argv); }
