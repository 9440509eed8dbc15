/* What the training scripts need from the operating system that Lua's standard library lacks:
 * whether a stream is a terminal (progress bar or plain lines), its width, creating directories,
 * and a Ctrl-C that asks a script to stop cleanly instead of killing it mid-write. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/binding.h"

/* The one piece of process-wide state: a signal handler can only talk through a global flag. */
static volatile sig_atomic_t interrupts_seen;

static void on_interrupt(int sig) {
    (void)sig;
    interrupts_seen++;
    if (interrupts_seen >= 2) signal(SIGINT, SIG_DFL); /* a second Ctrl-C kills as usual */
}

/* hr.catch_interrupt(on): while on, Ctrl-C (SIGINT) only sets a flag that hr.interrupted() reads. */
static int l_catch_interrupt(lua_State *L) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = lua_toboolean(L, 1) ? on_interrupt : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    interrupts_seen = 0;
    return 0;
}

static int l_interrupted(lua_State *L) {
    lua_pushboolean(L, interrupts_seen > 0);
    return 1;
}

/* hr.isatty(file) for io.stdout / io.stderr (or a descriptor number). */
static int l_isatty(lua_State *L) {
    int fd = -1;
    if (lua_isinteger(L, 1)) fd = hr_lua_check_int_range(L, 1, 0, INT_MAX, "isatty: the descriptor");
    else {
        luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
        if (s->f) fd = fileno(s->f);
    }
    lua_pushboolean(L, fd >= 0 && isatty(fd));
    return 1;
}

/* hr.terminal_columns() -> width of the terminal on stderr or stdout, or nil. */
static int l_terminal_columns(lua_State *L) {
    struct winsize ws;
    if ((ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) && ws.ws_col > 0)
        lua_pushinteger(L, ws.ws_col);
    else lua_pushnil(L);
    return 1;
}

/* hr.mkdir(path): creates path and its missing parents (like mkdir -p); raises naming the part that
 * failed. */
static int l_mkdir(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, len + 1);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char keep = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return luaL_error(L, "cannot create directory %s: %s", buf, strerror(errno));
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return luaL_error(L, "cannot create directory %s: a file of that name exists", buf);
        buf[i] = keep;
    }
    return 0;
}

static const luaL_Reg system_functions[] = {
    {"catch_interrupt", l_catch_interrupt}, {"interrupted", l_interrupted}, {"isatty", l_isatty},
    {"terminal_columns", l_terminal_columns}, {"mkdir", l_mkdir}, {NULL, NULL}};

void hr_lua_open_system(lua_State *L) {
    luaL_setfuncs(L, system_functions, 0);
    lua_pushstring(L, HR_SOURCE_DIR);
    lua_setfield(L, -2, "source_dir");
}
