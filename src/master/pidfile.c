#include "fdt_config.h"

#include "master/master.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

int fdt__pidfile_read(const char *path, pid_t *pid, struct fdt_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fdt_error_set(err, -errno, "pid file %s: %s", path, fdt_strerror(-errno));
    char buf[32];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return fdt_error_set(err, FDT_EINVAL, "pid file %s is empty", path);
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    long v;
    if (fdt__parse_long(buf, 1, 1 << 30, &v) < 0)
        return fdt_error_set(err, FDT_EINVAL, "pid file %s does not hold a pid", path);
    *pid = (pid_t)v;
    return 0;
}

int fdt__pidfile_write(const char *path, struct fdt_error *err)
{
    if (!path[0])
        return 0;
    pid_t old;
    if (fdt__pidfile_read(path, &old, NULL) == 0 && old != getpid() && kill(old, 0) == 0)
        return fdt_error_set(err, FDT_ECONFIG, "pid file %s names running process %d", path,
                             (int)old);
    char tmp[FDT_CFG_PATH_MAX + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fdt_error_set(err, -errno, "pid file %s: %s", tmp, fdt_strerror(-errno));
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    int rc = fdt__write_all(fd, buf, (size_t)n);
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return fdt_error_set(err, rc, "pid file %s: %s", path, fdt_strerror(rc));
    }
    return 0;
}

void fdt__pidfile_remove(const char *path)
{
    pid_t pid;
    if (path[0] && fdt__pidfile_read(path, &pid, NULL) == 0 && pid == getpid())
        unlink(path);
}
