#include "fdt_config.h"

#define FDT_LOG_MODULE "master"
#include "master/master.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <fdt/log.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pid file says which process is the master, and the master proves it is alive by
 * holding a POSIX write lock (F_SETLK) on the file for its whole life. The kernel drops
 * the lock when the master exits, however it exits, so a file left by a master that was
 * killed is recognisably stale: nobody holds it. POSIX locks belong to the process and are
 * not inherited by fork(), so workers never hold it. The catch of POSIX locks, that closing
 * any descriptor of the file drops the process's locks on it, is why the master never
 * opens the file again once written.
 *
 * Nothing here follows a symbolic link or writes into an existing file: the new file is
 * made under a fresh name with O_EXCL (mkostemp), locked, written, and renamed over the
 * path, so a user who can write the directory cannot make the master overwrite another
 * file, and a reader never sees a half-written pid. */

/* Who holds a write lock on the file: F_GETLK reports only locks of other processes. Returns
 * the holder's pid, 0 when nobody holds a write lock, UNSEEN when somebody does whose pid
 * the kernel does not tell (a process of another pid namespace: 0; an open file description
 * lock: -1), or -errno. */
#define UNSEEN INT_MAX
static pid_t lock_holder(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_GETLK, &fl) < 0)
        return -errno; /* GCOVR_EXCL_LINE: not reached: only ENOLCK, a file system without locks */
    /* Only the master's write lock counts: a read lock can be taken by anybody who may read
     * the file, so it proves nothing. */
    if (fl.l_type != F_WRLCK)
        return 0;
    return fl.l_pid > 0 ? fl.l_pid : UNSEEN;
}

#define UNSEEN_WHY                                                                                 \
    "is locked by a process this one cannot see (a master in another pid namespace, a "            \
    "container?)"

/* The pid written in the file open at fd, or 0 when it holds none. */
static pid_t pid_in(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    long v;
    if (fdt__parse_long(buf, 1, 1 << 30, &v) < 0)
        return 0;
    return (pid_t)v;
}

/* Refuse when a live master holds the file at path; a missing or stale file is fine. */
static int check_not_held(const char *path, pid_t predecessor, struct fdt_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        /* Missing, or a symbolic link that the rename below replaces without following. */
        if (errno == ENOENT || errno == ELOOP)
            return 0;
        return fdt_error_set(err, -errno, "pid file %s: %s", path, fdt_strerror(-errno));
    }
    pid_t holder = lock_holder(fd);
    pid_t named = pid_in(fd);
    close(fd);
    if (holder < 0)
        /* GCOVR_EXCL_START: not reached: lock_holder failing (ENOLCK, above) */
        return fdt_error_set(err, holder, "pid file %s: lock: %s", path, fdt_strerror(holder));
    /* GCOVR_EXCL_STOP */
    if (holder > 0 && holder == predecessor)
        return 0; /* a binary upgrade: the file moves to the new master */
    if (holder == UNSEEN)
        return fdt_error_set(err, FDT_ECONFIG, "pid file %s " UNSEEN_WHY, path);
    if (holder > 0)
        return fdt_error_set(err, FDT_ECONFIG, "pid file %s is held by running master %d", path,
                             (int)holder);
    if (named > 0)
        fdt_log(FDT_LOG_INFO, "pid file %s is stale (pid %d holds no lock on it): replacing it",
                path, (int)named);
    return 0;
}

int fdt__pidfile_write(const char *path, int *fd_out, pid_t predecessor, struct fdt_error *err)
{
    *fd_out = -1;
    if (!path[0])
        return 0;
    int rc = check_not_held(path, predecessor, err);
    if (rc < 0)
        return rc;
    char tmp[FDT_CFG_PATH_MAX + 16];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
        /* GCOVR_EXCL_START: unreachable: path is the master's pid_path, shorter than
         * FDT_CFG_PATH_MAX, and tmp has 16 bytes more for the suffix */
        return fdt_error_set(err, FDT_EINVAL, "pid file %s: path too long", path);
    /* GCOVR_EXCL_STOP */
    /* O_CREAT | O_EXCL under a name nobody could have prepared: never follows a link. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return fdt_error_set(err, -errno, "pid file %s: %s", tmp, fdt_strerror(-errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    rc = 0;
    if (fchmod(fd, 0644) < 0 || fcntl(fd, F_SETLK, &fl) < 0)
        rc = -errno; /* GCOVR_EXCL_LINE: not reached: a new file of ours: only ENOLCK */
    if (rc == 0)
        rc = fdt__write_all(fd, buf, (size_t)n);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        close(fd);
        return fdt_error_set(err, rc, "pid file %s: %s", path, fdt_strerror(rc));
    }
    *fd_out = fd;
    return 0;
}

void fdt__pidfile_remove(const char *path, int fd)
{
    if (fd < 0)
        return;
    /* Only the file this master wrote: another master may have replaced a file it thought
     * stale, and that one is not ours to remove. */
    struct stat mine, now;
    if (path[0] && fstat(fd, &mine) == 0 && lstat(path, &now) == 0 && mine.st_dev == now.st_dev &&
        mine.st_ino == now.st_ino)
        unlink(path);
    close(fd);
}

int fdt__pidfile_owner(const char *path, pid_t *pid, struct fdt_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        if (rc == -ENOENT)
            return fdt_error_set(err, rc, "pid file %s does not exist: is the server running?",
                                 path);
        return fdt_error_set(err, rc, "pid file %s: %s", path, fdt_strerror(rc));
    }
    pid_t named = pid_in(fd);
    pid_t holder = lock_holder(fd);
    /* A file that names no pid (empty, or not a number) says so rather than "pid 0". */
    char what[32] = "names no pid";
    if (named > 0)
        snprintf(what, sizeof(what), "names pid %d", (int)named);
    int rc = 0;
    if (holder < 0) {
        /* GCOVR_EXCL_START: not reached: lock_holder failing (ENOLCK, above) */
        rc = fdt_error_set(err, holder, "pid file %s: lock: %s", path, fdt_strerror(holder));
        /* GCOVR_EXCL_STOP */
    } else if (holder == UNSEEN) {
        rc = fdt_error_set(err, -ESRCH, "pid file %s " UNSEEN_WHY, path);
    } else if (holder == 0) {
        rc = fdt_error_set(err, -ESRCH, "pid file %s is stale: no running master holds it (it %s)",
                           path, what);
    } else if (holder != named) {
        rc = fdt_error_set(err, FDT_EINVAL, "pid file %s %s but is held by pid %d", path, what,
                           (int)holder);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *pid = holder;
    return fd;
}

bool fdt__pidfile_held(int fd)
{
    return lock_holder(fd) > 0;
}
