/*
 * privfs: see privfs.h.
 */
#include "privfs.h"

#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir of one component: a new directory gets exactly PRIVFS_DIR_MODE. Returns 0 or ERR_IO. */
static int s_mkdir1(const char *dir)
{
    if (mkdir(dir, PRIVFS_DIR_MODE) == 0)
        return chmod(dir, PRIVFS_DIR_MODE) == 0 ? 0 : ERR_IO; // the umask narrowed it maybe
    if (errno != EEXIST)
        return ERR_IO;
    struct stat st;
    if (stat(dir, &st) != 0)
        return ERR_IO;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return ERR_IO;
    }
    return 0;
}

int privfs_mkdirs(const char *path)
{
    if (!path || !*path)
        return ERR_INVAL;
    char tmp[PRIVFS_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(tmp))
        return ERR_TOOBIG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        int rc = s_mkdir1(tmp);
        *p = '/';
        if (rc)
            return rc;
    }
    return s_mkdir1(tmp);
}

int privfs_open(const char *path, int flags, mode_t mode)
{
    if (!path || !*path) {
        errno = EINVAL;
        return -1;
    }
    int fd;
    do
        fd = open(path, flags | O_CREAT | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || ((st.st_mode & 07777) != mode && fchmod(fd, mode) != 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

FILE *privfs_fopen(const char *path, const char *how)
{
    int flags;
    if (how && strcmp(how, "w") == 0)
        flags = O_WRONLY | O_TRUNC;
    else if (how && strcmp(how, "a") == 0)
        flags = O_WRONLY | O_APPEND;
    else if (how && strcmp(how, "r+") == 0)
        flags = O_RDWR;
    else {
        errno = EINVAL;
        return NULL;
    }
    int fd = privfs_open(path, flags, PRIVFS_FILE_MODE);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, how);
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

int privfs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PRIVFS_PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return ERR_TOOBIG;
    unlink(tmp);
    int fd = privfs_open(tmp, O_WRONLY | O_EXCL, mode);
    if (fd < 0)
        return ERR_IO;
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    bool ok = done == len && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : (saved ? saved : EIO);
        unlink(tmp);
        errno = saved;
        return ERR_IO;
    }
    return 0;
}

int privfs_tighten(const char *path)
{
    struct stat st;
    if (!path || lstat(path, &st) != 0)
        return !path ? ERR_INVAL : errno == ENOENT ? 0 : ERR_IO;
    if (S_ISLNK(st.st_mode) || (st.st_mode & 07777 & ~(mode_t)PRIVFS_FILE_MODE) == 0)
        return 0; // a link is not followed; a private file is left alone
    return chmod(path, PRIVFS_FILE_MODE) == 0 ? 0 : ERR_IO;
}

#ifdef RF_SELFTEST
#include "selftest.h"

#include <stdlib.h>

/* The permission bits of path, or -1. */
static int s_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

int privfs_test(bool verbose)
{
    int failed = 0;
    char root[] = "/tmp/rfprivfs.XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char p[PRIVFS_PATH_MAX + 64], q[PRIVFS_PATH_MAX];
    mode_t old = umask(0);
    for (int round = 0; round < 2; round++) {
        umask(round == 0 ? 0 : 0277); // the widest umask, then one that would make files unusable
        snprintf(p, sizeof(p), "%s/r%d/a//b/c", root, round);
        CHECK(privfs_mkdirs(p) == 0);
        CHECK(s_mode(p) == PRIVFS_DIR_MODE);
        snprintf(q, sizeof(q), "%s/r%d/a", root, round);
        CHECK(s_mode(q) == PRIVFS_DIR_MODE);
        CHECK(privfs_mkdirs(p) == 0); // exists already: fine
        snprintf(q, sizeof(q), "%s/r%d/a/b/c/file", root, round);
        FILE *f = privfs_fopen(q, "w");
        CHECK(f != NULL);
        if (f)
            CHECK(fputs("x", f) >= 0 && fclose(f) == 0);
        CHECK(s_mode(q) == PRIVFS_FILE_MODE);
        f = privfs_fopen(q, "a");
        CHECK(f != NULL);
        if (f)
            CHECK(fputs("y", f) >= 0 && fclose(f) == 0);
        f = privfs_fopen(q, "r+");
        char got[4] = {0};
        CHECK(f && fread(got, 1, 3, f) == 2 && strcmp(got, "xy") == 0);
        if (f)
            fclose(f);
        CHECK(privfs_fopen(q, "rw") == NULL && errno == EINVAL);
        // a file of an older version, created wide, is tightened on open
        CHECK(chmod(q, 0666) == 0);
        int fd = privfs_open(q, O_RDONLY, PRIVFS_FILE_MODE);
        CHECK(fd >= 0);
        if (fd >= 0)
            close(fd);
        CHECK(s_mode(q) == PRIVFS_FILE_MODE);
        // a shared mode asked for on purpose is set exactly
        fd = privfs_open(q, O_RDONLY, 0640);
        CHECK(fd >= 0 && s_mode(q) == 0640);
        if (fd >= 0)
            close(fd);
        CHECK(privfs_tighten(q) == 0 && s_mode(q) == PRIVFS_FILE_MODE);
        CHECK(chmod(q, 0400) == 0 && privfs_tighten(q) == 0 && s_mode(q) == 0400);
        snprintf(p, sizeof(p), "%s/r%d/missing", root, round);
        CHECK(privfs_tighten(p) == 0);
        // a component that is a file is an error naming ENOTDIR
        snprintf(p, sizeof(p), "%s/sub", q);
        CHECK(privfs_mkdirs(p) == ERR_IO && errno == ENOTDIR);
        CHECK(unlink(q) == 0);
        // atomic write: exactly the mode asked for, the whole text, replacing an older file
        CHECK(privfs_write_atomic(q, "old", 3, 0644) == 0 && s_mode(q) == 0644);
        CHECK(privfs_write_atomic(q, "new text", 8, PRIVFS_FILE_MODE) == 0);
        CHECK(s_mode(q) == PRIVFS_FILE_MODE);
        f = fopen(q, "r");
        char wr[16] = {0};
        CHECK(f && fread(wr, 1, sizeof(wr) - 1, f) == 8 && strcmp(wr, "new text") == 0);
        if (f)
            fclose(f);
        CHECK(unlink(q) == 0);
        CHECK(privfs_write_atomic(p, "x", 1, PRIVFS_FILE_MODE) == ERR_IO); // p's dir is a file
    }
    umask(old);
    CHECK(privfs_mkdirs("") == ERR_INVAL && privfs_mkdirs(NULL) == ERR_INVAL);
    CHECK(privfs_open("", O_RDONLY, PRIVFS_FILE_MODE) == -1);
    char *longp = malloc(PRIVFS_PATH_MAX + 2);
    if (longp) {
        memset(longp, 'a', PRIVFS_PATH_MAX + 1);
        longp[PRIVFS_PATH_MAX + 1] = '\0';
        CHECK(privfs_mkdirs(longp) == ERR_TOOBIG);
        free(longp);
    }
    char cmd[PRIVFS_PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return SELFTEST_RESULT("privfs", verbose);
}
#endif
