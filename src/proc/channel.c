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
    return fdt__channel_send_fd(fd, type, arg, text, -1, 0);
}

int fdt__channel_send_fd(int fd, uint32_t type, uint32_t arg, const char *text, int pass_fd,
                         int flags)
{
    struct fdt_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.arg = arg;
    if (text)
        fdt__strlcpy(m.text, text, sizeof(m.text));
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int fdt__channel_recv(int fd, struct fdt_msg *m)
{
    return fdt__channel_recv_fd(fd, m, NULL);
}

/* Descriptors that came with a message: the first is the caller's (when it wants one), any
 * other is closed. */
static void take_fds(struct msghdr *mh, int *passed)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (passed && *passed < 0)
                *passed = got;
            else
                fdt__close(got);
        }
    }
}

int fdt__channel_recv_fd(int fd, struct fdt_msg *m, int *passed)
{
    if (passed)
        *passed = -1;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    /* No EINTR to retry: with MSG_DONTWAIT the call never sleeps. */
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n == 0)
        return 0;
    if (n > 0) {
        take_fds(&mh, passed);
        if ((size_t)n < sizeof(*m))
            memset((char *)m + n, 0, sizeof(*m) - (size_t)n);
        m->text[sizeof(m->text) - 1] = '\0';
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return FDT_EAGAIN;
    return -errno;
}
