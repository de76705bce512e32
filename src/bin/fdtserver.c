/* fdtserver: the master binary. Everything lives in libfdt. */
#include <fdt/fdt.h>

int main(int argc, char **argv)
{
    return fdt_server_main(argc, argv);
}
