#include "fdt_config.h"

#include "proc/proc.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int fdt__channel_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
}

int fdt__channel_send(int fd, uint32_t type, uint32_t arg, const char *text)
{
    struct fdt_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.arg = arg;
    if (text)
        fdt__strlcpy(m.text, text, sizeof(m.text));
    for (;;) {
        ssize_t n = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int fdt__channel_recv(int fd, struct fdt_msg *m)
{
    for (;;) {
        ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n > 0) {
            if ((size_t)n < sizeof(*m))
                memset((char *)m + n, 0, sizeof(*m) - (size_t)n);
            m->text[sizeof(m->text) - 1] = '\0';
            return 1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return FDT_EAGAIN;
        return -errno;
    }
}
