/*
 * privfs: private state files and directories, whatever the umask.
 *
 * Every file rayfleet creates to keep state (SQLite databases, the kubeconfig `up --sim` writes,
 * pid and status files, logs, the bus's ipc:// sockets) is mode PRIVFS_FILE_MODE (0600) and every
 * state directory it creates PRIVFS_DIR_MODE (0700): they hold tokens, certificates and the cluster
 * objects. The modes are set explicitly (fchmod/chmod after creation), so a umask of 000 does not
 * widen them and an odd umask (0200) does not make them unusable.
 *
 * A file that already exists with a wider mode is tightened to the mode asked for (a database of
 * an older version that was created 0644). A directory that already exists is left as it is: the
 * user may have given a shared directory such as /tmp as --state-dir.
 *
 * SQLite: a database file pre-created with privfs_open() keeps its mode, and SQLite creates the
 * -wal and -shm files with the mode of their database file (os_unix.c, findCreateFileMode()), so
 * store.c pre-creates the database and tightens leftover -wal/-shm files (privfs_tighten()).
 */
#ifndef RF_PRIVFS_H
#define RF_PRIVFS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define PRIVFS_FILE_MODE 0600 /* a state file: read and written by its owner only */
#define PRIVFS_DIR_MODE 0700 /* a state directory: entered by its owner only */
#define PRIVFS_PATH_MAX 4096 /* longest path handled */

/* mkdir -p: every directory it creates is made mode PRIVFS_DIR_MODE; existing ones are kept as
 * they are. Returns 0, ERR_INVAL (empty path), ERR_TOOBIG (longer than PRIVFS_PATH_MAX) or ERR_IO
 * (errno set: a component cannot be created, or exists and is not a directory). */
int privfs_mkdirs(const char *path);

/* open(path, flags | O_CREAT | O_CLOEXEC) with `mode` (PRIVFS_FILE_MODE, or a wider mode a caller
 * shares on purpose, such as 0640 for a group), then the file's mode set to exactly `mode` when it
 * differs (a new file under any umask, an old one created wider). Returns the descriptor, or -1
 * with errno set (the file is not left open). */
int privfs_open(const char *path, int flags, mode_t mode);

/* fdopen() of privfs_open() with PRIVFS_FILE_MODE: `how` is "w" (truncate), "a" (append) or "r+"
 * (read and write, created when missing). NULL with errno set on failure. */
FILE *privfs_fopen(const char *path, const char *how);

/* Sets the mode of an existing file to PRIVFS_FILE_MODE when it has any other bit (group or other
 * access); a missing file is fine. Returns 0, or ERR_IO (errno set). */
int privfs_tighten(const char *path);

/* Writes data[len] to `path` atomically: a temporary file beside it ("<path>.tmp<pid>") created
 * with exactly `mode` (privfs_open()), written whole, fsync'ed, then renamed over `path`; readers
 * see the old file or the new one, never a part. Returns 0, ERR_TOOBIG (path too long) or ERR_IO
 * (errno set; the temporary file is removed). */
int privfs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The self-test. */
int privfs_test(bool verbose);

#endif
