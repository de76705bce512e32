/* Configuration: the INI file of design §2 plus command-line overrides. */
#ifndef FDT_SRC_CONFIG_H
#define FDT_SRC_CONFIG_H

#include <fdt/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#define FDT_CFG_MAX_LISTENERS 32
#define FDT_CFG_MAX_RESOURCES 16
#define FDT_CFG_MAX_APP_KEYS  64
#define FDT_CFG_NAME_MAX      64
#define FDT_CFG_PATH_MAX      1024
#define FDT_MAX_WORKERS       128
#define FDT_MAX_THREADS       256

/* [listen.NAME] verify_client: whether a TLS listener asks for a client certificate. */
enum fdt_tls_verify {
    FDT_TLS_VERIFY_NO = 0,       /* never asked */
    FDT_TLS_VERIFY_OPTIONAL = 1, /* asked; a client without one is served, a bad one refused */
    FDT_TLS_VERIFY_REQUIRE = 2,  /* a client without a valid certificate is refused */
};

enum fdt_protocol {
    FDT_PROTO_HTTP = 0,
    FDT_PROTO_JSONRPC = 1,
    FDT_PROTO_RAW = 2,
    FDT_PROTO_METRICS = 3, /* GET /metrics answered by the framework (Prometheus text) */
};

enum fdt_log_format {
    FDT_LOG_FORMAT_TEXT = 0,
    FDT_LOG_FORMAT_JSON = 1,
};

struct fdt_listen_cfg {
    char name[FDT_CFG_NAME_MAX];
    char address[FDT_CFG_PATH_MAX]; /* HOST:PORT, [V6]:PORT or unix:/path */
    enum fdt_protocol protocol;
    bool reuseport;
    int backlog;
    int defer_accept;  /* seconds of TCP_DEFER_ACCEPT; 0: off */
    bool txn_recovery; /* jsonrpc: answer txn.recover / txn.commit_prepared / txn.rollback_prepared
                        */
    /* TLS (docs/operations.md): the master reads the files at start and at every reload. */
    bool tls;
    char certificate[FDT_CFG_PATH_MAX]; /* PEM: the server certificate, then its chain */
    char private_key[FDT_CFG_PATH_MAX]; /* PEM */
    char ca[FDT_CFG_PATH_MAX];          /* PEM: CAs that sign client certificates */
    enum fdt_tls_verify verify_client;
    char ciphers[512];        /* TLS 1.2 cipher list (OpenSSL syntax); "": OpenSSL's default */
    char ciphersuites[256];   /* TLS 1.3 cipher suites; "": OpenSSL's default */
    int min_version;          /* 0x0303 TLS 1.2 or 0x0304 TLS 1.3 */
    double handshake_timeout; /* seconds from accept to the end of the handshake */
    bool session_tickets;     /* resumption with tickets (key shared by a generation) */
};

struct fdt_resource_cfg {
    char name[FDT_CFG_NAME_MAX];
    char driver[16];             /* postgresql | sqlite */
    char dsn[FDT_CFG_PATH_MAX];  /* postgresql */
    char path[FDT_CFG_PATH_MAX]; /* sqlite */
    bool log;
    /* sqlite: concurrent transactions of a worker share one write transaction and one
     * fsync (docs/transactions.md, "SQLite group commit"). */
    bool group_commit;
    int group_commit_max;       /* requests per batch */
    double group_commit_window; /* seconds: a batch older than this takes no newcomer */
};

struct fdt_kv {
    char *key;
    char *value;
};

struct fdt_cfg {
    char file[FDT_CFG_PATH_MAX]; /* "" when no file */
    /* [server] */
    int workers; /* 0 means: number of CPUs, resolved by fdt__cfg_finish */
    int threads;
    int pollers;
    double graceful_timeout;
    double worker_timeout;
    double ready_timeout;
    double idle_timeout;
    int max_connections; /* per worker */
    size_t max_input;    /* bytes buffered per connection before the app consumes them */
    size_t max_output;   /* bytes queued per connection for a slow client */
    /* HTTP limits (see docs/http.md). */
    size_t max_header_size;   /* request line + headers; over it: 431 */
    size_t max_body_size;     /* request body; over it: 413 */
    double header_timeout;    /* seconds from a request's first byte to its last header */
    double body_timeout;      /* seconds from the end of the headers to the end of the body */
    double keepalive_timeout; /* seconds an idle keep-alive connection is kept; 0: idle_timeout */
    /* TCP keepalive probes on accepted TCP connections (not unix sockets): a peer that
     * vanished without a FIN is noticed after tcp_keepidle + tcp_keepintvl * tcp_keepcnt. */
    bool tcp_keepalive; /* SO_KEEPALIVE */
    int tcp_keepidle;   /* TCP_KEEPIDLE: seconds idle before the first probe */
    int tcp_keepintvl;  /* TCP_KEEPINTVL: seconds between probes */
    int tcp_keepcnt;    /* TCP_KEEPCNT: unanswered probes before the connection is dropped */
    char pid_file[FDT_CFG_PATH_MAX];
    char control_socket[FDT_CFG_PATH_MAX];
    char user[FDT_CFG_NAME_MAX];
    char group[FDT_CFG_NAME_MAX];
    int log_level;
    char error_log[FDT_CFG_PATH_MAX];
    char access_log[FDT_CFG_PATH_MAX];
    int log_format;                           /* enum fdt_log_format: error log and access log */
    char request_id_header[FDT_CFG_NAME_MAX]; /* "": ids are generated, not accepted or sent */
    char health_path[FDT_CFG_PATH_MAX];       /* "": none */
    /* Recycling (docs/operations.md, "Worker recycling"); 0: off. */
    int max_requests;
    int max_requests_jitter;
    size_t max_worker_memory; /* bytes of RSS */
    char node[FDT_CFG_NAME_MAX];
    double recovery_interval;   /* seconds between scans for in-doubt transactions */
    double recovery_grace;      /* a prepared branch younger than this is in flight */
    double in_doubt_warn_age;   /* warn about voted branches older than this */
    double transaction_timeout; /* an active transaction idle this long is rolled back */
    /* [listen.NAME] */
    struct fdt_listen_cfg listeners[FDT_CFG_MAX_LISTENERS];
    int n_listeners;
    /* [app] */
    char app_module[FDT_CFG_PATH_MAX];
    char app_wsgi[FDT_CFG_NAME_MAX * 4];    /* "pkg.module:callable", a Python WSGI application */
    char app_jsonrpc[FDT_CFG_NAME_MAX * 4]; /* "pkg.module:mapping", Python JSON-RPC methods */
    /* [python] (only with app_wsgi or app_jsonrpc) */
    char python_path[FDT_CFG_PATH_MAX]; /* prepended to sys.path */
    char python_home[FDT_CFG_PATH_MAX]; /* a virtual environment */
    struct fdt_kv app_keys[FDT_CFG_MAX_APP_KEYS];
    int n_app_keys;
    /* [resource.NAME] */
    struct fdt_resource_cfg resources[FDT_CFG_MAX_RESOURCES];
    int n_resources;
};

/* Defaults for every setting (from the table in config_table.c); no listeners, no
 * resources, no application. */
void fdt__cfg_init(struct fdt_cfg *cfg);
/* Free what the config owns (app keys). */
void fdt__cfg_deinit(struct fdt_cfg *cfg);

/* Read an INI file into cfg. Relative paths are anchored at the file's directory. Errors
 * name file, line and key in err (an unknown key also names the nearest known one). */
int fdt__cfg_load_file(struct fdt_cfg *cfg, const char *path, struct fdt_error *err);
/* Apply one "section.key=value" override (from --set); the message starts with "--set: ".
 * The last dot before '=' splits section and key. */
int fdt__cfg_set(struct fdt_cfg *cfg, const char *assignment, struct fdt_error *err);
/* Apply one setting of [section] (for example "server" or "listen.main"). There is no file
 * here: a relative path is kept as given, and err names no file or line. */
int fdt__cfg_apply(struct fdt_cfg *cfg, const char *section, const char *key, const char *value,
                   struct fdt_error *err);
/* Add a listener from "ADDR[,PROTOCOL]" (--listen). */
int fdt__cfg_add_listen(struct fdt_cfg *cfg, const char *spec, struct fdt_error *err);
/* Check the whole configuration and resolve defaults (workers = CPUs, keepalive_timeout =
 * idle_timeout). */
int fdt__cfg_finish(struct fdt_cfg *cfg, struct fdt_error *err);

/* Print, in INI form, the [server] settings that differ from their defaults, then every
 * listener, the [app] section and every resource (what --check would load). Values are
 * printed as they are, a dsn with its password too: print to the user, not to a log.
 * Thread: any (reads cfg only). */
void fdt__cfg_describe(const struct fdt_cfg *cfg, FILE *out);

/* A name that may go into a transaction id ([server] node, resource names): 1 to 63
 * letters, digits, '_' or '-'. */
bool fdt__cfg_name_ok(const char *name);

/* Value of an [app] key or NULL. */
const char *fdt__cfg_app_get(const struct fdt_cfg *cfg, const char *key);
const char *fdt__proto_name(enum fdt_protocol p);

/* A parsed listening address. */
struct fdt_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family; /* AF_INET, AF_INET6 or AF_UNIX */
};

/* Parse "HOST:PORT", "[V6]:PORT", ":PORT" (all IPv4 addresses) or "unix:/path". Numeric
 * hosts and "localhost" only: the master makes no DNS queries. Returns 0 or FDT_EINVAL. */
int fdt__addr_parse(const char *text, struct fdt_addr *a);

#endif
