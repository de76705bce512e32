#include "fdt_config.h"

/* Parsing listening addresses: the configuration checks them, listen binds them. */

#include "config/config.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static int parse_port(const char *s, uint16_t *port)
{
    long p;
    if (fdt__parse_long(s, 0, 65535, &p) < 0)
        return FDT_EINVAL;
    *port = (uint16_t)p;
    return 0;
}

/* "unix:/path" (text is what follows "unix:"). */
static int parse_unix(const char *path, struct fdt_addr *a)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(un->sun_path))
        return FDT_EINVAL;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    a->family = AF_UNIX;
    return 0;
}

/* "[V6]:PORT". */
static int parse_v6(const char *text, struct fdt_addr *a)
{
    char host[256];
    const char *end = strchr(text, ']');
    if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
        return FDT_EINVAL;
    memcpy(host, text + 1, (size_t)(end - text - 1));
    host[end - text - 1] = '\0';
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    uint16_t p;
    if (parse_port(end + 2, &p) < 0 || inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
        return FDT_EINVAL;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(p);
    a->len = sizeof(*in6);
    a->family = AF_INET6;
    return 0;
}

/* "HOST:PORT", where HOST may be empty or "*" (any), "localhost" or numeric IPv4. */
static int parse_v4(const char *text, struct fdt_addr *a)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return FDT_EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
    uint16_t p;
    if (parse_port(colon + 1, &p) < 0)
        return FDT_EINVAL;
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        in->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
        return FDT_EINVAL;
    in->sin_family = AF_INET;
    in->sin_port = htons(p);
    a->len = sizeof(*in);
    a->family = AF_INET;
    return 0;
}

int fdt__addr_parse(const char *text, struct fdt_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text + 5, a);
    if (text[0] == '[')
        return parse_v6(text, a);
    return parse_v4(text, a);
}
