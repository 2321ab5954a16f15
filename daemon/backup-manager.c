/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <lmdb.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup-manager.h"
#include "backup.h"
#include "kasa-time.h"
#include "log.h"

#define STAGED "restore.staged"
#define STAGING "restore.tmp"
#define NAMES_FILE "NAMES"

/* A Backup or a Restore: a thread of its own, which reads or writes the
 * caller's fd, and a done() on the loop when it is finished. */
typedef struct BackupJob {
        Manager *manager;
        sd_bus_message *call;            /* Backup: replied to when done */
        ManagerRestoreDone restore_done; /* Restore: told when done */
        void *userdata;
        int fd, efd;
        int cancel; /* an eventfd: the loop says stop (at teardown) */
        char *stage;
        pthread_t thread;
        bool running;
        sd_event_source *done;
        uint64_t created_usec;
        int result;
        char *error;
        char version[64]; /* Restore: of the kasamond that wrote it */
} BackupJob;

/* a + b + c into buf; "" when it does not fit (state paths are short). */
static void join(char *buf, size_t size, const char *a, const char *b, const char *c) {
        int n = snprintf(buf, size, "%s%s%s", a, b, c);
        if (n < 0 || (size_t) n >= size)
                buf[0] = 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf, for directories kasamond made itself. */
static int remove_tree(const char *path) {
        if (access(path, F_OK) < 0)
                return 0;
        return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static int fsync_path(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

static bool is_sqlite(const char *name) {
        size_t n = strlen(name);
        return n > 7 && strcmp(name + n - 7, ".sqlite") == 0;
}

/* The online backup API: a consistent copy while the daemon's own
 * connection goes on writing (WAL). */
static int sqlite_snapshot(const char *src, const char *dst, int64_t *ret_schema, char **ret_error) {
        sqlite3 *from = NULL, *to = NULL;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(from, 5000);
                sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
                if (!b)
                        rc = sqlite3_errcode(to);
                else {
                        while ((rc = sqlite3_backup_step(b, 256)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                                if (rc != SQLITE_OK)
                                        sqlite3_sleep(10);
                        int rc2 = sqlite3_backup_finish(b);
                        rc = rc == SQLITE_DONE ? rc2 : rc;
                }
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(to, "PRAGMA user_version", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                *ret_schema = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
                (void) error_set(ret_error, 0, "Failed to snapshot %s: %s", src, sqlite3_errstr(rc));
        sqlite3_close(from);
        sqlite3_close(to);
        return rc == SQLITE_OK ? 0 : -EIO;
}

/* Waits until fd is ready for events, or the loop says stop. The caller's
 * fd is its own (its flags are shared with the caller), so it stays
 * blocking; a thread waiting on it must still end at teardown. */
static int wait_fd(BackupJob *j, short events) {
        struct pollfd p[2] = { { .fd = j->fd, .events = events }, { .fd = j->cancel, .events = POLLIN } };
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents)
                        return -ECANCELED;
                return 0;
        }
}

/* After POLLOUT a pipe has room for PIPE_BUF bytes at least, and a socket
 * for more: a write of that much does not block. A regular file is always
 * ready and takes all. */
static ssize_t write_cancellable(void *userdata, const void *buf, size_t size) {
        BackupJob *j = userdata;
        int r = wait_fd(j, POLLOUT);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = write(j->fd, buf, MIN(size, (size_t) PIPE_BUF));
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n;
        }
}

static ssize_t read_cancellable(void *userdata, void *buf, size_t size) {
        BackupJob *j = userdata;
        int r = wait_fd(j, POLLIN);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = read(j->fd, buf, size);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n;
        }
}

static void *backup_thread(void *userdata) {
        BackupJob *j = userdata;
        Manager *m = j->manager;
        BackupFile files[BACKUP_FILES_MAX];
        size_t n = 0;
        char src[4096], dst[4096];
        int r;

        /* The log's rounds into LMDB, so that the copy has them (the loop
         * ended the open round); rounds after this go on being recorded
         * and are not in the backup. Waits for the disk, so not on the
         * loop. */
        r = store_checkpoint_wait(m->store);
        if (r < 0)
                (void) asprintf(&j->error, "Failed to checkpoint the readings: %s", strerror(-r));
        for (size_t i = 0; r >= 0 && BACKUP_NAMES[i]; i++) {
                const char *name = BACKUP_NAMES[i];
                BackupFile *f = &files[n];
                *f = (BackupFile) { .schema = -1 };
                snprintf(f->name, sizeof f->name, "%s", name);
                join(src, sizeof src, m->state_dir, "/", name);
                join(dst, sizeof dst, j->stage, "/", name);
                if (is_sqlite(name)) {
                        if (access(src, F_OK) < 0)
                                continue;
                        r = sqlite_snapshot(src, dst, &f->schema, &j->error);
                } else {
                        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                        r = fd < 0 ? -errno : store_copy_compact(m->store, fd);
                        if (fd >= 0)
                                close(fd);
                        if (r < 0)
                                (void) error_set(&j->error, 0, "Failed to copy the readings: %s", strerror(-r));
                }
                n++;
        }
        if (r >= 0)
                r = backup_archive_write_fn(write_cancellable, j, j->stage, files, n, m->version, j->created_usec,
                                            &j->error);
        if (r >= 0 && fsync(j->fd) < 0 && errno != EINVAL && errno != EROFS)
                r = -errno;
        (void) remove_tree(j->stage);
        j->result = r;
        (void) eventfd_write(j->efd, 1);
        return NULL;
}

static void job_free(BackupJob *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->done);
        sd_bus_message_unref(j->call);
        if (j->fd >= 0)
                close(j->fd);
        if (j->efd >= 0)
                close(j->efd);
        if (j->cancel >= 0)
                close(j->cancel);
        if (j->stage)
                (void) remove_tree(j->stage);
        free(j->stage);
        free(j->error);
        free(j);
}

/* A job for the caller's fd (dup'd: the message keeps its own). */
static int job_new(Manager *m, int fd, BackupJob **ret) {
        BackupJob *j = calloc(1, sizeof(BackupJob));
        if (!j)
                return -ENOMEM;
        *j = (BackupJob) { .manager = m, .efd = -EBADF, .cancel = -EBADF, .result = -EINPROGRESS };
        j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        j->cancel = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->fd < 0 || j->efd < 0 || j->cancel < 0) {
                int r = -errno;
                job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

static int job_start(BackupJob *j, void *(*thread)(void *), sd_event_io_handler_t done) {
        int r = sd_event_add_io(j->manager->event, &j->done, j->efd, EPOLLIN, done, j);
        if (r < 0)
                return r;
        r = -pthread_create(&j->thread, NULL, thread, j);
        if (r < 0)
                return r;
        j->running = true;
        return 0;
}

/* Tells the thread to stop waiting on the caller's fd, and waits for it:
 * bounded, however the caller treats its end. */
static void job_stop(BackupJob *j) {
        if (!j->running)
                return;
        (void) eventfd_write(j->cancel, 1);
        pthread_join(j->thread, NULL);
        j->running = false;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BackupJob *j = userdata;
        Manager *m = j->manager;
        int r;

        job_stop(j);
        m->backup = NULL;
        if (j->result < 0) {
                log_error_errno(j->result, "Backup failed: %s", j->error ?: strerror(-j->result));
                r = sd_bus_reply_method_errorf(j->call, SD_BUS_ERROR_FAILED, "%s",
                                               j->error ?: strerror(-j->result));
        } else {
                log_info("Backup written.");
                r = sd_bus_reply_method_return(j->call, NULL);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to reply to Backup(), ignoring: %m");
        job_free(j);
        return 0;
}

int manager_backup_start(Manager *m, int fd, sd_bus_message *call) {
        BackupJob *j;
        int r;

        if (m->backup)
                return -EBUSY;
        r = job_new(m, fd, &j);
        if (r < 0)
                return r;
        j->call = sd_bus_message_ref(call);
        j->created_usec = realtime_usec();
        if (asprintf(&j->stage, "%s/backup.tmp.XXXXXX", m->state_dir) < 0) {
                j->stage = NULL;
                r = -ENOMEM;
                goto fail;
        }
        if (!mkdtemp(j->stage)) {
                r = -errno;
                goto fail;
        }
        char readings[4096];
        join(readings, sizeof readings, j->stage, "/readings", "");
        if (mkdir(readings, 0700) < 0) {
                r = -errno;
                goto fail;
        }
        /* The round open now ends here, on the loop that fills it; the
         * thread waits for the checkpoint. */
        (void) store_commit_round(m->store);
        r = job_start(j, backup_thread, on_done);
        if (r < 0)
                goto fail;
        m->backup = j;
        return 0;
fail:
        job_free(j);
        return r;
}

void manager_backup_free(Manager *m) {
        if (m->backup) {
                /* Unanswered: the bus closed with the loop, and the
                 * caller sees kasamond go. */
                job_stop(m->backup);
                job_free(m->backup);
                m->backup = NULL;
        }
        if (m->restore) {
                BackupJob *j = m->restore;
                job_stop(j);
                m->restore = NULL;
                /* Joined: a thread past its checks has staged the archive,
                 * and the next start puts it in place; the caller is told. */
                if (j->result >= 0)
                        log_info("Restore of a backup of kasamond %s staged as kasamond stops; it is put in place "
                                 "at the next start.", j->version);
                j->restore_done(j->result >= 0 ? 0 : -ECANCELED, NULL, j->userdata);
                job_free(j);
        }
}

/* The staged SQLite files open and pass quick_check, at the schema the
 * manifest says. */
static int check_sqlite(const char *path, int64_t schema, char **ret_error) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        const char *name = strrchr(path, '/') + 1;
        bool good = false;
        int64_t v = -1;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                good = strcmp((const char *) sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
        st = NULL;
        if (good && sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (!good)
                return asprintf(ret_error, "%s in the archive is not a sound SQLite database.", name) < 0 ? -ENOMEM
                                                                                                        : -EBADMSG;
        if (v != schema)
                return asprintf(ret_error, "%s in the archive has schema %lld; its manifest says %lld.", name,
                                (long long) v, (long long) schema) < 0 ? -ENOMEM : -EBADMSG;
        return 0;
}

/* The staged readings open as an LMDB environment with its main
 * database: the store could open them. */
static int check_lmdb(const char *dir, char **ret_error) {
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        MDB_dbi dbi;
        int rc = mdb_env_create(&env);
        if (rc == 0)
                rc = mdb_env_set_maxdbs(env, 16);
        if (rc == 0)
                rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
        if (rc == 0)
                rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        if (rc == 0)
                rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        if (txn)
                mdb_txn_abort(txn);
        mdb_env_close(env);
        if (rc != 0)
                return asprintf(ret_error, "The readings in the archive are not an LMDB database: %s.",
                                mdb_strerror(rc)) < 0 ? -ENOMEM : -EBADMSG;
        return 0;
}

/* Reads and checks the archive into restore.tmp/ and commits it as
 * restore.staged/: on the restore's thread (the caller's fd may be slow,
 * the checks and syncs wait for the disk). */
static int restore_stage(BackupJob *j, const char *state_dir, char **ret_error) {
        _cleanup_free_ char *stage = NULL, *staged = NULL, *names = NULL;
        BackupManifest man;
        bool devices = false, readings = false;
        char path[4096];
        int r;

        if (asprintf(&stage, "%s/" STAGING, state_dir) < 0 || asprintf(&staged, "%s/" STAGED, state_dir) < 0)
                return -ENOMEM;
        r = remove_tree(stage);
        if (r >= 0 && mkdir(stage, 0700) < 0)
                r = -errno;
        if (r < 0)
                return r;
        r = backup_archive_read(read_cancellable, j, stage, &man, ret_error);
        for (size_t i = 0; r >= 0 && i < man.n_files; i++) {
                devices = devices || strcmp(man.files[i].name, "devices.sqlite") == 0;
                readings = readings || strcmp(man.files[i].name, "readings/data.mdb") == 0;
                join(path, sizeof path, stage, "/", man.files[i].name);
                if (is_sqlite(man.files[i].name))
                        r = check_sqlite(path, man.files[i].schema, ret_error);
        }
        if (r >= 0 && (!devices || !readings))
                r = asprintf(ret_error, "The archive lacks devices.sqlite or the readings.") < 0 ? -ENOMEM : -EBADMSG;
        if (r >= 0) {
                join(path, sizeof path, stage, "/readings", "");
                r = check_lmdb(path, ret_error);
        }
        if (r >= 0) {
                /* Which files the archive holds: the others go at apply. */
                size_t size = 0;
                FILE *f = open_memstream(&names, &size);
                for (size_t i = 0; f && i < man.n_files; i++)
                        fprintf(f, "%s\n", man.files[i].name);
                if (!f || fclose(f) < 0)
                        r = -ENOMEM;
                join(path, sizeof path, stage, "/" NAMES_FILE, "");
                int nfd = r >= 0 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
                if (r >= 0 && (nfd < 0 || write(nfd, names, size) != (ssize_t) size || fsync(nfd) < 0))
                        r = -errno;
                if (nfd >= 0)
                        close(nfd);
        }
        if (r >= 0) {
                join(path, sizeof path, stage, "/readings", "");
                r = fsync_path(path);
        }
        if (r >= 0)
                r = fsync_path(stage);
        /* The commit point: from here the restore happens, at the next
         * start if not now. */
        if (r >= 0 && (remove_tree(staged) < 0 || rename(stage, staged) < 0))
                r = -errno;
        if (r >= 0)
                r = fsync_path(state_dir);
        if (r < 0) {
                (void) remove_tree(stage);
                return r;
        }
        snprintf(j->version, sizeof j->version, "%s", man.version);
        return 0;
}

static void *restore_thread(void *userdata) {
        BackupJob *j = userdata;

        j->result = restore_stage(j, j->manager->state_dir, &j->error);
        (void) eventfd_write(j->efd, 1);
        return NULL;
}

static int on_restored(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BackupJob *j = userdata;
        Manager *m = j->manager;

        job_stop(j);
        m->restore = NULL;
        if (j->result >= 0) {
                log_info("Restore of a backup of kasamond %s staged; restarting to put it in place.", j->version);
                m->restart = true;
        }
        j->restore_done(j->result, j->error, j->userdata);
        job_free(j);
        return 0;
}

int manager_restore_start(Manager *m, int fd, ManagerRestoreDone done, void *userdata) {
        BackupJob *j;
        int r;

        if (m->restart || m->restore)
                return -EBUSY;
        r = job_new(m, fd, &j);
        if (r < 0)
                return r;
        j->restore_done = done;
        j->userdata = userdata;
        r = job_start(j, restore_thread, on_restored);
        if (r < 0) {
                job_free(j);
                return r;
        }
        m->restore = j;
        return 0;
}

static int move_in(const char *from, const char *to) {
        return rename(from, to) < 0 && errno != ENOENT ? -errno : 0;
}

int backup_apply_staged(const char *state_dir) {
        char staged[4096], path[4096], target[4096], old[4096];
        _cleanup_free_ char *names = NULL;
        int r;

        /* What a crash left half done: a backup's copies, a restore not
         * yet committed. */
        glob_t g = {};
        join(path, sizeof path, state_dir, "/backup.tmp.*", "");
        if (glob(path, GLOB_NOSORT, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        (void) remove_tree(g.gl_pathv[i]);
        globfree(&g);
        join(path, sizeof path, state_dir, "/" STAGING, "");
        (void) remove_tree(path);

        join(staged, sizeof staged, state_dir, "/" STAGED, "");
        if (access(staged, F_OK) < 0)
                return 0;
        join(path, sizeof path, staged, "/" NAMES_FILE, "");
        FILE *f = fopen(path, "re");
        size_t size = 0;
        if (!f || getdelim(&names, &size, 0, f) < 0) {
                r = -errno;
                if (f)
                        fclose(f);
                return log_error_errno(r, "Failed to read %s: %m", path);
        }
        fclose(f);

        for (size_t i = 0; BACKUP_NAMES[i]; i++) {
                const char *name = BACKUP_NAMES[i];
                char line[80];
                snprintf(line, sizeof line, "\n%s\n", name);
                bool listed = strncmp(names, line + 1, strlen(line + 1)) == 0 || strstr(names, line) != NULL;
                join(path, sizeof path, staged, "/", name);
                join(target, sizeof target, state_dir, "/", name);
                if (is_sqlite(name)) {
                        if (listed && access(path, F_OK) < 0)
                                continue; /* moved by a run that crashed */
                        /* Logs of the old database must not meet the new one. */
                        for (const char *sfx = "-wal"; sfx; sfx = strcmp(sfx, "-wal") == 0 ? "-shm" : NULL) {
                                join(old, sizeof old, target, sfx, "");
                                if (unlink(old) < 0 && errno != ENOENT)
                                        return log_error_errno(errno, "Failed to remove %s: %m", old);
                        }
                        r = listed ? move_in(path, target) : (unlink(target) < 0 && errno != ENOENT ? -errno : 0);
                } else {
                        char dir[4096];
                        join(dir, sizeof dir, staged, "/readings", "");
                        join(target, sizeof target, state_dir, "/readings", "");
                        join(old, sizeof old, state_dir, "/readings.old", "");
                        /* The old readings are only ever needed until the
                         * new ones are in place; if they are, a crash may
                         * have left the old ones behind. */
                        if (access(dir, F_OK) < 0) {
                                r = remove_tree(old);
                                if (r < 0)
                                        return log_error_errno(r, "Failed to remove %s: %m", old);
                                continue;
                        }
                        r = remove_tree(old);
                        if (r >= 0)
                                r = move_in(target, old);
                        if (r >= 0)
                                r = move_in(dir, target);
                        if (r >= 0)
                                r = remove_tree(old);
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to put %s of the restored backup in place: %m", name);
        }
        r = fsync_path(state_dir);
        if (r >= 0)
                r = remove_tree(staged);
        if (r < 0)
                return log_error_errno(r, "Failed to finish the restore in %s: %m", state_dir);
        log_info("Restored the state of a backup.");
        return 0;
}
