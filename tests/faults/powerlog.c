/* powerlog: an LD_PRELOAD library that records what a process asks the disk to do to some
 * files - every positional write, truncate and sync, in order - so that a test can rebuild the
 * files as a power cut at any moment could have left them (tests/faults/test_power_loss.py).
 *
 * Files whose path contains $POWERLOG_MATCH are recorded (not SQLite's -shm: it holds no data
 * and is rebuilt from the WAL after a crash); a write to a file whose path ends in
 * ".mark" is recorded as a MARK (the writer's "this commit returned"). An unlink of a recorded
 * file is recorded too (SQLite's rollback journal goes away, and its inode may come back as the
 * WAL). The log is $POWERLOG.
 * Each event: u8 type, u32 file, i64 offset, u32 length, then length bytes. OPEN carries the
 * path. One lock keeps each operation and its record in the same order for every thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { EV_OPEN = 1, EV_WRITE = 2, EV_SYNC = 3, EV_TRUNC = 4, EV_MARK = 5, EV_UNLINK = 6 };
#define MAX_FD 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static const char *match;
static int32_t file_of[MAX_FD]; /* fd -> file id + 1 (0: not recorded); -1: a mark file */
/* A file is its inode: the gateway's connection and the checkpointer's open the same files. */
#define MAX_FILES 64
static dev_t file_dev[MAX_FILES];
static ino_t file_ino[MAX_FILES];
static uint32_t next_file;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_unlink)(const char *);

__attribute__((constructor)) static void init(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *path = getenv("POWERLOG");
    match = getenv("POWERLOG_MATCH");
    if (path && match)
        log_fd = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static void put(const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = real_write(log_fd, c, n);
        if (w <= 0)
            abort(); /* a log with a hole would prove nothing */
        c += w;
        n -= (size_t)w;
    }
}

static void record(uint8_t type, uint32_t file, int64_t offset, const void *data, uint32_t n) {
    put(&type, 1);
    put(&file, 4);
    put(&offset, 8);
    put(&n, 4);
    if (n)
        put(data, n);
}

static size_t ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

static void opened(int fd, const char *path) {
    if (fd < 0 || fd >= MAX_FD || log_fd < 0)
        return;
    if (ends_with(path, ".mark")) {
        file_of[fd] = -1;
    } else if (strstr(path, match) && !ends_with(path, "-shm")) { /* -shm holds no data */
        struct stat st;
        if (fstat(fd, &st) != 0)
            abort();
        uint32_t id = 0;
        while (id < next_file && !(file_dev[id] == st.st_dev && file_ino[id] == st.st_ino))
            id++;
        if (id == next_file) {
            if (next_file == MAX_FILES)
                abort();
            file_dev[id] = st.st_dev;
            file_ino[id] = st.st_ino;
            next_file++;
            record(EV_OPEN, id, 0, path, (uint32_t)strlen(path));
        }
        file_of[fd] = (int32_t)id + 1;
    } else {
        file_of[fd] = 0;
    }
}

static int tracked(int fd) { return log_fd >= 0 && fd >= 0 && fd < MAX_FD && file_of[fd]; }

#define OPEN_BODY(call)                                   \
    mode_t mode = 0;                                      \
    if (flags & (O_CREAT | O_TMPFILE)) {                  \
        va_list ap;                                       \
        va_start(ap, flags);                              \
        mode = va_arg(ap, mode_t);                        \
        va_end(ap);                                       \
    }                                                     \
    pthread_mutex_lock(&lock);                            \
    int fd = call;                                        \
    opened(fd, path);                                     \
    pthread_mutex_unlock(&lock);                          \
    return fd;

int open(const char *path, int flags, ...) { OPEN_BODY(real_open(path, flags, mode)) }
int open64(const char *path, int flags, ...) { OPEN_BODY(real_open64(path, flags, mode)) }
int openat(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat(dir, path, flags, mode))
}
int openat64(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat64(dir, path, flags, mode))
}

int close(int fd) {
    pthread_mutex_lock(&lock);
    if (fd >= 0 && fd < MAX_FD)
        file_of[fd] = 0;
    int r = real_close(fd);
    pthread_mutex_unlock(&lock);
    return r;
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (!tracked(fd))
        return real_write(fd, buf, n);
    pthread_mutex_lock(&lock);
    ssize_t r = real_write(fd, buf, n);
    if (r > 0 && file_of[fd] < 0)
        record(EV_MARK, 0, 0, buf, (uint32_t)r);
    else if (r > 0)
        abort(); /* SQLite writes with pwrite; an unpositioned write here is not understood */
    pthread_mutex_unlock(&lock);
    return r;
}

static ssize_t logged_pwrite(int fd, const void *buf, ssize_t r, int64_t off) {
    if (r > 0 && file_of[fd] > 0)
        record(EV_WRITE, (uint32_t)file_of[fd] - 1, off, buf, (uint32_t)r);
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (!tracked(fd))
        return real_pwrite(fd, buf, n, off);
    pthread_mutex_lock(&lock);
    ssize_t r = logged_pwrite(fd, buf, real_pwrite(fd, buf, n, off), off);
    pthread_mutex_unlock(&lock);
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    if (!tracked(fd))
        return real_pwrite64(fd, buf, n, off);
    pthread_mutex_lock(&lock);
    ssize_t r = logged_pwrite(fd, buf, real_pwrite64(fd, buf, n, off), off);
    pthread_mutex_unlock(&lock);
    return r;
}

static int synced(int fd, int r) {
    if (r == 0 && file_of[fd] > 0)
        record(EV_SYNC, (uint32_t)file_of[fd] - 1, 0, NULL, 0);
    return r;
}

int fsync(int fd) {
    if (!tracked(fd))
        return real_fsync(fd);
    pthread_mutex_lock(&lock);
    int r = synced(fd, real_fsync(fd));
    pthread_mutex_unlock(&lock);
    return r;
}

int fdatasync(int fd) {
    if (!tracked(fd))
        return real_fdatasync(fd);
    pthread_mutex_lock(&lock);
    int r = synced(fd, real_fdatasync(fd));
    pthread_mutex_unlock(&lock);
    return r;
}

static int truncated(int fd, int r, int64_t size) {
    if (r == 0 && file_of[fd] > 0)
        record(EV_TRUNC, (uint32_t)file_of[fd] - 1, size, NULL, 0);
    return r;
}

int ftruncate(int fd, off_t size) {
    if (!tracked(fd))
        return real_ftruncate(fd, size);
    pthread_mutex_lock(&lock);
    int r = truncated(fd, real_ftruncate(fd, size), size);
    pthread_mutex_unlock(&lock);
    return r;
}

int ftruncate64(int fd, off64_t size) {
    if (!tracked(fd))
        return real_ftruncate64(fd, size);
    pthread_mutex_lock(&lock);
    int r = truncated(fd, real_ftruncate64(fd, size), size);
    pthread_mutex_unlock(&lock);
    return r;
}

int unlink(const char *path) {
    if (log_fd < 0 || !strstr(path, match) || ends_with(path, "-shm"))
        return real_unlink(path);
    pthread_mutex_lock(&lock);
    struct stat st;
    int known = stat(path, &st) == 0;
    int r = real_unlink(path);
    if (r == 0 && known) {
        for (uint32_t id = 0; id < next_file; id++) {
            if (file_dev[id] == st.st_dev && file_ino[id] == st.st_ino) {
                record(EV_UNLINK, id, 0, NULL, 0);
                file_ino[id] = 0; /* a new file on this inode is a new file */
                file_dev[id] = 0;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}
