/* fdtserver: the server binary. Everything lives in libfdt; main() only picks the entry, so
 * that the master never carries the transaction command line. */
#include <fdt/fdt.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "txn") == 0)
        return fdt_server_txn_main(argc - 1, argv + 1);
    return fdt_server_main(argc, argv);
}
