/* fdtctl: talk to a running fdtserver over its control socket. */
#include "fdt_config.h"

#include "config/config.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char usage[] =
    "usage: fdtctl [--socket PATH | -c FILE] COMMAND\n"
    "commands:\n"
    "  status [--json]       generations, workers, counters, last reload\n"
    "  reload [--wait]       reload; with --wait, exit 0 once the new generation serves,\n"
    "                        non-zero with the reason if the reload failed\n"
    "  stop | quit           graceful | immediate stop\n"
    "  reopen                reopen log files\n"
    "  workers +N | -N       add or remove workers\n";

int main(int argc, char **argv)
{
    const char *sock = NULL;
    const char *file = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if ((strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "-S") == 0) && i + 1 < argc)
            sock = argv[++i];
        else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else
            break;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    static struct fdt_cfg cfg;
    fdt__cfg_init(&cfg);
    if (!sock && file) {
        struct fdt_error err = {0};
        if (fdt__cfg_load_file(&cfg, file, &err) < 0) {
            fprintf(stderr, "fdtctl: %s:%d: %s\n", file, err.line, err.msg);
            return 2;
        }
    }
    if (!sock)
        sock = cfg.control_socket;
    fdt__cfg_deinit(&cfg); /* only the socket path is used from here on */

    char req[512] = "";
    const char *cmd = argv[i];
    size_t used = 0;
    used += (size_t)snprintf(req + used, sizeof(req) - used, "%s", cmd);
    for (int j = i + 1; j < argc && used < sizeof(req); j++) {
        const char *a = argv[j];
        if (strcmp(a, "--json") == 0)
            a = "json";
        else if (strcmp(a, "--wait") == 0)
            a = "wait";
        used += (size_t)snprintf(req + used, sizeof(req) - used, " %s", a);
    }
    if (used + 2 >= sizeof(req)) {
        fprintf(stderr, "fdtctl: command too long\n");
        return 2;
    }
    req[used++] = '\n';
    req[used] = '\0';

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(un.sun_path)) {
        fprintf(stderr, "fdtctl: socket path too long\n");
        return 2;
    }
    memcpy(un.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        fprintf(stderr, "fdtctl: cannot connect to %s: %s (is fdtserver running?)\n", sock,
                fdt_strerror(-errno));
        return 1;
    }
    if (fdt__write_all(fd, req, used) < 0) {
        fprintf(stderr, "fdtctl: write: %s\n", fdt_strerror(-errno));
        return 1;
    }
    char buf[65536];
    size_t total = 0;
    bool first = true;
    int code = 1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        const char *p = buf;
        size_t len = (size_t)n;
        if (first) {
            first = false;
            code = strncmp(buf, "OK", 2) == 0 ? 0 : 1;
            /* Drop the bare "OK" status line; keep the message of "OK msg" / "ERR msg". */
            if (len >= 3 && strncmp(buf, "OK\n", 3) == 0) {
                p += 3;
                len -= 3;
            }
        }
        fwrite(p, 1, len, code == 0 ? stdout : stderr);
        total += (size_t)n;
    }
    close(fd);
    if (total == 0) {
        fprintf(stderr, "fdtctl: no answer from %s\n", sock);
        return 1;
    }
    return code;
}
