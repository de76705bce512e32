/* fdtctl: talk to a running fdtserver over its control socket. */
#include "fdt_config.h"

#include "config/config.h"
#include "txn/txn_cli.h"
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
    "  workers +N | -N       add or remove workers\n"
    "  txn list              prepared (in-doubt) transactions of this node, with their age\n"
    "  txn commit|rollback GID   resolve one (recorded in the log with a comment)\n";

/* Ask the master one question; the answer (without its status line) goes to out. */
static int ask(const char *sock, const char *req, char *out, size_t size)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(un.sun_path))
        return -1;
    memcpy(un.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t used = 0;
    if (fdt__write_all(fd, req, strlen(req)) == 0) {
        ssize_t n;
        while (used + 1 < size && (n = read(fd, out + used, size - 1 - used)) > 0)
            used += (size_t)n;
    }
    close(fd);
    out[used] = '\0';
    return strncmp(out, "OK\n", 3) == 0 ? 0 : -1;
}

/* fdtctl txn ...: the databases are asked directly, with the resources of the running
 * server's configuration file (the master itself never blocks on a database). */
static int txn(const char *sock, const char *file, int argc, char **argv)
{
    static char answer[1 << 20];
    char path[4096] = "";
    if (file) {
        fdt__strlcpy(path, file, sizeof(path));
    } else {
        struct fdt_cfg *tmp = malloc(sizeof(*tmp));
        if (!tmp)
            return 1;
        fdt__cfg_init(tmp);
        const char *s = sock ? sock : tmp->control_socket;
        int rc = ask(s, "status json\n", answer, sizeof(answer));
        fdt__cfg_deinit(tmp);
        free(tmp);
        const char *key = "\"config_file\":\"";
        const char *p = rc == 0 ? strstr(answer, key) : NULL;
        if (!p) {
            fprintf(stderr, "fdtctl: cannot learn the configuration file from the server; "
                            "use -c FILE\n");
            return 1;
        }
        p += strlen(key);
        size_t n = strcspn(p, "\"");
        if (n >= sizeof(path))
            return 1;
        memcpy(path, p, n);
        path[n] = '\0';
    }
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    if (!cfg)
        return 1;
    fdt__cfg_init(cfg);
    int rc;
    if (fdt__cfg_load_file(cfg, path, &err) < 0) {
        fprintf(stderr, "fdtctl: %s:%d: %s\n", path, err.line, err.msg);
        rc = 2;
    } else {
        rc = fdt__txn_cli(cfg, argc, argv);
    }
    fdt__cfg_deinit(cfg);
    free(cfg);
    return rc;
}

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
    if (strcmp(argv[i], "txn") == 0)
        return txn(sock, file, argc - i - 1, argv + i + 1);
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
