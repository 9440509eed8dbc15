/* Exclusive locks on a file, held for the life of a process (train.lua's run directory lock,
 * lua/hybridrt/runlock.lua): flock(2) on a file that holds who took it.
 *
 * The lock is the kernel's, so it dies with its process: a lock file left behind by a kill -9 holds
 * the dead process's record but no lock, and the next process takes it over (and is told whose it
 * was). The file is never deleted: deleting it would let two processes hold "the" lock on two
 * different files (one on the unlinked inode, one on the new file), as in the kernel cache.
 * hr.list_dir lets the new holder find what a dead one left half written (its temp files). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lua/binding.h"

#define HR_LOCK_MT "hybridrt.Lock"
#define HR_LOCK_RECORD_MAX 4096

typedef struct {
    int fd; /* -1 once released */
} file_lock;

/* Up to HR_LOCK_RECORD_MAX - 1 bytes of the file from its start, NUL-terminated. */
static void read_record(int fd, char *buf) {
    ssize_t n = pread(fd, buf, HR_LOCK_RECORD_MAX - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* Releases: empties the record (an empty file says "released cleanly"), unlocks and closes. */
static void release(file_lock *lk) {
    if (lk->fd < 0) return;
    if (ftruncate(lk->fd, 0) != 0) (void)0; /* costs only a "took over" note next time: the lock still ends */
    flock(lk->fd, LOCK_UN);
    close(lk->fd);
    lk->fd = -1;
}

static int l_lock_release(lua_State *L) {
    release(luaL_checkudata(L, 1, HR_LOCK_MT));
    return 0;
}

static int l_lock_held(lua_State *L) {
    lua_pushboolean(L, ((file_lock *)luaL_checkudata(L, 1, HR_LOCK_MT))->fd >= 0);
    return 1;
}

/* hr.lock_file(path, [note]) -> lock, stale | nil, holder
 * Creates path if needed and takes an exclusive lock on it without waiting. Taken: the file is
 * rewritten to this process's record ("pid=N\nhost=H\nstarted=YYYY-MM-DD HH:MM:SS +ZZZZ\n" and note)
 * and the call returns a Lock (lock:release(), also on collection and as a to-be-closed variable)
 * and the record found in the file, when there was one: it was left by a process that ended without
 * releasing (a kill -9, a power cut), else nil. Held by another process (or another open of the file
 * in this one): nil and the holder's record ("" if it has not written one yet). Anything else
 * (a directory that cannot be written, a file system without locks, a path that is not a regular
 * file) raises naming the path and the reason. */
static int l_lock_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *note = luaL_optstring(L, 2, "");
    /* O_NONBLOCK: a FIFO in the lock's place must not block the open; O_NOFOLLOW: nor a link lead
     * elsewhere */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) return luaL_error(L, "cannot open the lock file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return luaL_error(L, "cannot lock %s: not a regular file", path);
    }
    char record[HR_LOCK_RECORD_MAX];
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK) {
            close(fd);
            return luaL_error(L, "cannot lock %s: %s", path, strerror(err));
        }
        /* the holder writes its record right after taking the lock: give it a moment */
        read_record(fd, record);
        for (int i = 0; i < 50 && record[0] == '\0'; i++) {
            struct timespec pause = {0, 4000000};
            nanosleep(&pause, NULL);
            read_record(fd, record);
        }
        close(fd);
        lua_pushnil(L);
        lua_pushstring(L, record);
        return 2;
    }
    read_record(fd, record);
    char host[256] = "?", started[64] = "?";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S %z", &tm);
    char mine[HR_LOCK_RECORD_MAX];
    int len = snprintf(mine, sizeof mine, "pid=%ld\nhost=%s\nstarted=%s\n%s", (long)getpid(), host, started, note);
    if (len < 0 || len >= (int)sizeof mine) len = (int)strlen(mine);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, mine, (size_t)len, 0) != (ssize_t)len) {
        int err = errno;
        close(fd);
        return luaL_error(L, "cannot write the lock file %s: %s", path, strerror(err));
    }
    file_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = fd;
    luaL_setmetatable(L, HR_LOCK_MT);
    if (record[0]) lua_pushstring(L, record);
    else lua_pushnil(L);
    return 2;
}

/* hr.list_dir(path) -> the names in the directory (without . and ..), in the directory's order;
 * raises naming the directory and the reason when it cannot be read. */
static int l_list_dir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) return luaL_error(L, "cannot list %s: %s", path, strerror(errno));
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    return 1;
}

static const luaL_Reg lock_meta[] = {{"__gc", l_lock_release}, {"__close", l_lock_release}, {NULL, NULL}};
static const luaL_Reg lock_methods[] = {{"release", l_lock_release}, {"held", l_lock_held}, {NULL, NULL}};
static const luaL_Reg functions[] = {{"lock_file", l_lock_file}, {"list_dir", l_list_dir}, {NULL, NULL}};

void hr_lua_open_lock(lua_State *L) {
    if (luaL_newmetatable(L, HR_LOCK_MT)) {
        luaL_setfuncs(L, lock_meta, 0);
        luaL_newlib(L, lock_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
