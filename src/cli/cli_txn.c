/* `fdtserver txn list [--node NAME] | commit GID | rollback GID -c FILE`. The fdtserver binary's
 * main() dispatches here before the master exists, so the master never links the transaction
 * command line (design §5: the master is small). */
#include "fdt_config.h"

#include "config/config.h"
#include "txn/txn_cli.h"

#include <fdt/fdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fdt_server_txn_main(int argc, char **argv)
{
    const char *file = NULL;
    char *words[4];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (n < 4)
            words[n++] = argv[i];
    }
    if (!file) {
        fprintf(stderr, "fdtserver txn: -c FILE is required (the resources are in it)\n");
        return 2;
    }
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "fdtserver txn: cannot read the configuration: out of memory\n");
        return 1;
    }
    fdt__cfg_init(cfg);
    struct fdt_error err = {0};
    int code;
    if (fdt__cfg_load_file(cfg, file, &err) < 0) {
        if (err.file && err.line > 0)
            fprintf(stderr, "fdtserver: %s:%d: %s\n", err.file, err.line, err.msg);
        else if (err.file)
            fprintf(stderr, "fdtserver: %s: %s\n", err.file, err.msg);
        else
            fprintf(stderr, "fdtserver: %s\n", err.msg);
        code = 2;
    } else {
        code = fdt__txn_cli(cfg, n, words);
    }
    fdt__cfg_deinit(cfg);
    free(cfg);
    return code;
}
