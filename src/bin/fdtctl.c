/* fdtctl: talk to a running fdtserver over its control socket. */
#include "fdt_config.h"

#include "config/config.h"
#include "txn/txn_cli.h"
#include "util/util.h"

#include <errno.h>
#include <fdt/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char usage[] =
    "usage: fdtctl [--socket PATH | -c FILE] COMMAND\n"
    "       fdtctl --version | --help\n"
    "options:\n"
    "  -S, --socket PATH     the control socket of the server\n"
    "  -c, --config FILE     the server's configuration file, for its [server] control_socket\n"
    "                        (and, for txn, its resources); default: the default control socket\n"
    "  -v, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "commands:\n"
    "  status [--json]       generations, workers, counters, last reload; exits 3 when no\n"
    "                        generation is serving (starting, failed or stopping)\n"
    "  metrics               the metrics in the Prometheus text format (version 0.0.4)\n"
    "  reload [--wait]       reload; with --wait, exit 0 once the new generation serves,\n"
    "                        non-zero with the reason if the reload failed\n"
    "  stop | quit           graceful | immediate stop\n"
    "  reopen                reopen log files\n"
    "  workers +N | -N | N   add N workers, remove N, or run N; prints the new number\n"
    "  txn list              prepared (in-doubt) transactions of every node, with age and owner\n"
    "  txn commit|rollback GID   resolve one (recorded in the log with a comment)\n"
    "exit status: 0 done, 1 failed or refused, 2 bad usage, 3 (status) not serving\n";

/* Largest "status json" answer read to learn the configuration file. */
#define STATUS_ANSWER_MAX (1 << 20)

/* The command line: options, then the command at argv[cmd]. */
struct ctl_args {
    const char *sock;
    const char *file;
    int cmd;
};

/* Parse the options. Returns -1 to go on with a.cmd, or the exit status (--help, --version,
 * no command). Nothing here connects to the server. */
static int parse_args(int argc, char **argv, struct ctl_args *a)
{
    memset(a, 0, sizeof(*a));
    int i = 1;
    for (; i < argc; i++) {
        const char *o = argv[i];
        if ((strcmp(o, "--socket") == 0 || strcmp(o, "-S") == 0) && i + 1 < argc) {
            a->sock = argv[++i];
        } else if ((strcmp(o, "-c") == 0 || strcmp(o, "--config") == 0) && i + 1 < argc) {
            a->file = argv[++i];
        } else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(o, "--version") == 0 || strcmp(o, "-v") == 0) {
            printf("fdtctl %s\n", FDT_VERSION);
            return 0;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    a->cmd = i;
    return -1;
}

/* The control socket: --socket, else [server] control_socket of -c FILE (or its default).
 * Returns 0, or the exit status after printing why. */
static int socket_path(const char *sock, const char *file, char *out, size_t size)
{
    if (sock) {
        fdt__strlcpy(out, sock, size);
        return 0;
    }
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "fdtctl: cannot read the configuration: out of memory\n");
        return 1;
    }
    fdt__cfg_init(cfg);
    struct fdt_error err = {0};
    int code = 0;
    if (file && fdt__cfg_load_file(cfg, file, &err) < 0) {
        fprintf(stderr, "fdtctl: %s:%d: %s\n", file, err.line, err.msg);
        code = 2;
    } else {
        fdt__strlcpy(out, cfg->control_socket, size);
    }
    fdt__cfg_deinit(cfg);
    free(cfg);
    return code;
}

/* A connected socket to the control socket at path, or a negative code. */
static int connect_to(const char *path)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(un.sun_path))
        return -ENAMETOOLONG;
    memcpy(un.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno; /* GCOVR_EXCL_LINE: not reached: the loader needed a descriptor free */
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Ask the master one question; the whole answer goes to out. Returns 0 if it says OK. */
static int ask(const char *sock, const char *req, char *out, size_t size)
{
    size_t used = 0;
    int fd = connect_to(sock);
    if (fd >= 0) {
        if (fdt__write_all(fd, req, strlen(req)) == 0) {
            ssize_t n;
            while (used + 1 < size && (n = read(fd, out + used, size - 1 - used)) > 0)
                used += (size_t)n;
        }
        close(fd);
    }
    out[used] = '\0';
    return strncmp(out, "OK\n", 3) == 0 ? 0 : -1;
}

/* The configuration file of the running server, from its "status json" answer. Returns 0, or
 * -1 when the server cannot say. */
static int server_config_file(const char *sock, char *path, size_t size)
{
    char *answer = malloc(STATUS_ANSWER_MAX);
    struct fdt_json_doc *doc = fdt_json_doc_new();
    int rc = -1;
    if (!answer || !doc || ask(sock, "status json\n", answer, STATUS_ANSWER_MAX) < 0)
        goto out;
    const char *body = answer + 3; /* after "OK\n" */
    struct fdt_json *root;
    if (fdt_json_parse(doc, body, strlen(body), NULL, &root, NULL) < 0)
        goto out;
    size_t len;
    const char *file = fdt_json_string_value(fdt_json_object_get(root, "config_file"), &len);
    if (!file || len >= size || memchr(file, '\0', len))
        goto out;
    memcpy(path, file, len + 1);
    rc = 0;
out:
    fdt_json_doc_free(doc);
    free(answer);
    return rc;
}

/* fdtctl txn ...: the databases are asked directly, with the resources of the running
 * server's configuration file (the master itself never blocks on a database). */
static int txn(const struct ctl_args *a, int argc, char **argv)
{
    char path[4096] = "";
    if (a->file) {
        fdt__strlcpy(path, a->file, sizeof(path));
    } else {
        char sock[FDT_CFG_PATH_MAX];
        int code = socket_path(a->sock, NULL, sock, sizeof(sock));
        if (code)
            return code;
        if (server_config_file(sock, path, sizeof(path)) < 0) {
            fprintf(stderr, "fdtctl: cannot learn the configuration file from the server; "
                            "use -c FILE\n");
            return 1;
        }
    }
    struct fdt_cfg *cfg = malloc(sizeof(*cfg));
    struct fdt_error err = {0};
    if (!cfg) {
        fprintf(stderr, "fdtctl: cannot read the configuration: out of memory\n");
        return 1;
    }
    fdt__cfg_init(cfg);
    int code;
    if (fdt__cfg_load_file(cfg, path, &err) < 0) {
        fprintf(stderr, "fdtctl: %s:%d: %s\n", path, err.line, err.msg);
        code = 2;
    } else {
        code = fdt__txn_cli(cfg, argc, argv);
    }
    fdt__cfg_deinit(cfg);
    free(cfg);
    return code;
}

/* The request line for the command words argv[0, argc): "--json" and "--wait" become "json"
 * and "wait". Returns its length, or 0 when it does not fit. */
static size_t build_request(int argc, char **argv, char *req, size_t size)
{
    size_t used = 0;
    for (int j = 0; j < argc && used < size; j++) {
        const char *w = argv[j];
        if (strcmp(w, "--json") == 0)
            w = "json";
        else if (strcmp(w, "--wait") == 0)
            w = "wait";
        used += (size_t)snprintf(req + used, size - used, "%s%s", j ? " " : "", w);
    }
    if (used + 2 >= size)
        return 0;
    req[used++] = '\n';
    req[used] = '\0';
    return used;
}

/* Exit status of fdtctl status when the server answers but no generation serves. */
#define EXIT_NOT_SERVING 3

/* The exit status for the answer's first line (without its newline), and whether the body
 * goes to stdout. "OK": 0; "OK not serving: REASON" (status): 3, the reason on stderr and
 * the status on stdout; "OK MSG": 0, the line on stdout; "ERR MSG": 1, the line and the body on
 * stderr. */
static int status_of(const char *line, size_t len, bool *to_stdout)
{
    static const char not_serving[] = "OK not serving: ";
    *to_stdout = true;
    if (len >= sizeof(not_serving) - 1 &&
        strncmp(line, not_serving, sizeof(not_serving) - 1) == 0) {
        fprintf(stderr, "fdtctl: not serving: %.*s\n", (int)(len - (sizeof(not_serving) - 1)),
                line + sizeof(not_serving) - 1);
        return EXIT_NOT_SERVING;
    }
    if (len == 2 && strncmp(line, "OK", 2) == 0)
        return 0;
    if (len >= 3 && strncmp(line, "OK ", 3) == 0) {
        printf("%.*s\n", (int)len, line);
        return 0;
    }
    *to_stdout = false;
    fprintf(stderr, "%.*s\n", (int)len, line);
    return 1;
}

/* Copy the answer on fd to stdout (OK) or stderr (ERR), without a bare "OK" status line.
 * Returns the exit status. */
static int relay_answer(int fd, const char *sock)
{
    char buf[65536];
    size_t head = 0; /* bytes of the first line gathered in buf, until its newline */
    bool in_body = false, to_stdout = true;
    int code = 1;
    for (;;) {
        ssize_t n = read(fd, buf + head, sizeof(buf) - head);
        if (n < 0 && errno == EINTR)
            continue; /* GCOVR_EXCL_LINE: unreachable: fdtctl installs no signal handler */
        if (n <= 0)
            break;
        const char *p = buf;
        size_t len = (size_t)n;
        if (!in_body) {
            head += len;
            char *nl = memchr(buf, '\n', head);
            if (!nl && head < sizeof(buf))
                continue;
            size_t line = nl ? (size_t)(nl - buf) : head;
            code = status_of(buf, line, &to_stdout);
            in_body = true;
            p = nl ? nl + 1 : buf + head;
            len = head - (size_t)(p - buf);
            head = 0;
        }
        fwrite(p, 1, len, to_stdout ? stdout : stderr);
    }
    if (!in_body && head > 0) {
        code = status_of(buf, head, &to_stdout); /* a first line without a newline */
        in_body = true;
    }
    if (!in_body) {
        fprintf(stderr, "fdtctl: no answer from %s\n", sock);
        return 1;
    }
    return code;
}

/* Send one control command (argv[0, argc)) and print the answer. Returns the exit status. */
static int control(const char *sock, int argc, char **argv)
{
    char req[512];
    size_t len = build_request(argc, argv, req, sizeof(req));
    if (len == 0) {
        fprintf(stderr, "fdtctl: command too long\n");
        return 2;
    }
    int fd = connect_to(sock);
    if (fd == -ENAMETOOLONG) {
        fprintf(stderr, "fdtctl: socket path too long\n");
        return 2;
    }
    if (fd < 0) {
        fprintf(stderr, "fdtctl: cannot connect to %s: %s (is fdtserver running?)\n", sock,
                fdt_strerror(fd));
        return 1;
    }
    int code;
    if (fdt__write_all(fd, req, len) < 0) {
        /* A master that refuses the client says why before it closes: print that. */
        int rc = -errno;
        char why[256];
        ssize_t n = read(fd, why, sizeof(why) - 1);
        if (n > 0) {
            why[n] = '\0';
            fprintf(stderr, "%s%s", why, why[n - 1] == '\n' ? "" : "\n");
        } else {
            fprintf(stderr, "fdtctl: write: %s\n", fdt_strerror(rc));
        }
        code = 1;
    } else {
        code = relay_answer(fd, sock);
    }
    close(fd);
    return code;
}

int main(int argc, char **argv)
{
    /* A master that closes the control connection first (too many control clients, or
     * exiting) makes a write fail with EPIPE, reported as an error, instead of killing
     * fdtctl silently. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ign, NULL);
    struct ctl_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;
    if (strcmp(argv[a.cmd], "txn") == 0)
        return txn(&a, argc - a.cmd - 1, argv + a.cmd + 1);
    char sock[FDT_CFG_PATH_MAX];
    code = socket_path(a.sock, a.file, sock, sizeof(sock));
    if (code)
        return code;
    return control(sock, argc - a.cmd, argv + a.cmd);
}
