/*
 * giro.fs — the few file-system and process primitives giro.output needs to
 * deliver a file without ever damaging one, and the SIGINT/SIGTERM flag.
 *
 *   fs.lstat(path) / fs.stat(path) -> { type=, mode=, dev=, ino=, size= } | nil, reason, errno
 *       type: "file", "dir", "link", "char", "block", "fifo", "socket", "other"
 *   fs.resolve(path)      -> the path with every symlink followed (the last one
 *                            may point at a file that does not exist yet) | nil, reason
 *   fs.list(dir)          -> { names... } | nil, reason
 *   fs.unlink(path)       -> true | nil, reason
 *   fs.writable(dir)      -> true | nil, reason (access W_OK|X_OK: a file can be made in it)
 *   fs.alive(pid)         -> false only when no process pid exists (kill(pid, 0))
 *   fs.pid()              -> this process's id
 *   fs.temp(dir, base)    -> temp | nil, reason: a new file "<dir>/.<base>.giro-<pid>-<n>.tmp"
 *                            opened O_EXCL (mode 0666 & umask)
 *   fs.memtemp()          -> temp | nil, reason: an anonymous file (memfd), nowhere on disk
 *   temp:fd(), temp:path() (a path that reads it back: /proc/self/fd/N for a memfd),
 *   temp:write(s), temp:sync(), temp:chmod(mode) -> true | nil, reason
 *   temp:commit(final)    -> fsync, rename onto final, fsync final's directory
 *   temp:copy_to(file)    -> copy the whole content to a Lua file (stdout)
 *   temp:discard()        -> close and unlink (idempotent; also __gc and __close)
 *
 *   fs.catch_signals()    -> install SIGINT and SIGTERM handlers that set a flag,
 *                            and a count hook on this thread that raises
 *                            { kind = "interrupted", signal = N, message = ... }
 *                            at the next Lua instruction after the signal
 *   fs.caught()           -> the signal number caught since the last clear, or nil
 *   fs.clear_caught()
 *   fs.die(sig)           -> end the process by that signal (default action)
 *
 * A SIGTERM that Lua code does not take within TERM_GRACE seconds (giro blocked
 * in a C call), or a second SIGINT/SIGTERM before the first was cleared, ends the
 * process from the handler after removing the live temporary files.
 *
 * The signal flags and the list of live temporary files are the only static
 * variables: a signal handler has nowhere else to find what it needs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "giro.h"

#define TEMP_MT "giro.fs.temp"

static int os_fail(lua_State *L, int err)
{
    lua_pushnil(L);
    lua_pushstring(L, strerror(err));
    lua_pushinteger(L, err);
    return 3;
}

static const char *type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "link";
    if (S_ISCHR(m)) return "char";
    if (S_ISBLK(m)) return "block";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    return "other";
}

static int push_stat(lua_State *L, const struct stat *st)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, type_name(st->st_mode));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st->st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushinteger(L, (lua_Integer)st->st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, (lua_Integer)st->st_size);
    lua_setfield(L, -2, "size");
    return 1;
}

static int l_lstat(lua_State *L)
{
    struct stat st;
    if (lstat(luaL_checkstring(L, 1), &st) != 0)
        return os_fail(L, errno);
    return push_stat(L, &st);
}

static int l_stat(lua_State *L)
{
    struct stat st;
    if (stat(luaL_checkstring(L, 1), &st) != 0)
        return os_fail(L, errno);
    return push_stat(L, &st);
}

/* Follow symlinks by hand (realpath refuses a link to a file not yet made). */
static int l_resolve(lua_State *L)
{
    const char *given = luaL_checkstring(L, 1);
    char cur[PATH_MAX], target[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", given) >= (int)sizeof cur)
        return os_fail(L, ENAMETOOLONG);
    for (int hops = 0; ; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            break;
        if (hops >= 40)
            return os_fail(L, ELOOP);
        ssize_t n = readlink(cur, target, sizeof target - 1);
        if (n < 0)
            return os_fail(L, errno);
        target[n] = '\0';
        if (target[0] == '/') {
            memcpy(cur, target, (size_t)n + 1);
        } else {
            char *slash = strrchr(cur, '/');
            size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
            if (dl + (size_t)n + 1 > sizeof cur)
                return os_fail(L, ENAMETOOLONG);
            memmove(cur + dl, target, (size_t)n + 1);
        }
    }
    lua_pushstring(L, cur);
    return 1;
}

/* The DIR is owned by a userdata so that a memory error while listing leaks nothing. */
typedef struct { DIR *d; } dir_box;

static int dir_gc(lua_State *L)
{
    dir_box *b = luaL_checkudata(L, 1, "giro.fs.dir");
    if (b->d != NULL) {
        closedir(b->d);
        b->d = NULL;
    }
    return 0;
}

static int l_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    dir_box *b = lua_newuserdatauv(L, sizeof *b, 0);    /* [box] */
    b->d = NULL;
    luaL_setmetatable(L, "giro.fs.dir");
    b->d = opendir(path);
    if (b->d == NULL)
        return os_fail(L, errno);
    lua_newtable(L);                                    /* [box, names] */
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(b->d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(b->d);
    b->d = NULL;
    return 1;
}

static int l_writable(lua_State *L)
{
    if (access(luaL_checkstring(L, 1), W_OK | X_OK) != 0)
        return os_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_unlink(lua_State *L)
{
    if (unlink(luaL_checkstring(L, 1)) != 0)
        return os_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "not a process id");
    lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno != ESRCH);
    return 1;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* ------------------------------------------------------------------------ */

typedef struct fs_temp {
    int fd;
    int live;          /* the file still exists under path and is ours to remove */
    int mem;           /* anonymous: nothing to unlink */
    struct fs_temp *prev, *next;   /* in the list of live temps while live */
    char path[PATH_MAX];
} fs_temp;

/* The live temporary files, for the signal handler's last resort (see force_exit):
 * a userdata's memory does not move, and the list is changed with SIGINT and
 * SIGTERM blocked, so the handler never sees it half-linked. */
static fs_temp *live_temps;

static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, old);
}

static void link_live(fs_temp *t)
{
    sigset_t old;
    block_signals(&old);
    t->prev = NULL;
    t->next = live_temps;
    if (live_temps != NULL)
        live_temps->prev = t;
    live_temps = t;
    t->live = 1;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void unlink_live(fs_temp *t)
{
    sigset_t old;
    block_signals(&old);
    if (t->live) {
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            live_temps = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        t->prev = t->next = NULL;
        t->live = 0;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static fs_temp *check_temp(lua_State *L)
{
    return luaL_checkudata(L, 1, TEMP_MT);
}

static fs_temp *check_open(lua_State *L)
{
    fs_temp *t = check_temp(L);
    if (t->fd < 0)
        luaL_error(L, "giro.fs: the temporary file is closed");
    return t;
}

static fs_temp *new_temp(lua_State *L)
{
    fs_temp *t = lua_newuserdatauv(L, sizeof *t, 0);
    t->fd = -1;
    t->live = t->mem = 0;
    t->prev = t->next = NULL;
    t->path[0] = '\0';
    luaL_setmetatable(L, TEMP_MT);
    return t;
}

static int l_temp(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *base = luaL_checkstring(L, 2);
    fs_temp *t = new_temp(L);
    for (int n = 0; n < 1000; n++) {
        int len = snprintf(t->path, sizeof t->path, "%s/.%s.giro-%ld-%d.tmp", dir, base, (long)getpid(), n);
        if (len < 0 || (size_t)len >= sizeof t->path)
            return os_fail(L, ENAMETOOLONG);
        t->fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (t->fd >= 0) {
            link_live(t);
            return 1;
        }
        if (errno != EEXIST)
            return os_fail(L, errno);
    }
    return os_fail(L, EEXIST);
}

static int l_memtemp(lua_State *L)
{
    fs_temp *t = new_temp(L);
    t->fd = memfd_create("giro-output", MFD_CLOEXEC);
    if (t->fd < 0)
        return os_fail(L, errno);
    t->mem = 1;
    snprintf(t->path, sizeof t->path, "/proc/self/fd/%d", t->fd);
    return 1;
}

static int t_fd(lua_State *L)
{
    lua_pushinteger(L, check_open(L)->fd);
    return 1;
}

static int t_path(lua_State *L)
{
    lua_pushstring(L, check_temp(L)->path);
    return 1;
}

static int t_write(lua_State *L)
{
    fs_temp *t = check_open(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    while (n > 0) {
        ssize_t w = write(t->fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return os_fail(L, errno);
        }
        s += w;
        n -= (size_t)w;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int t_chmod(lua_State *L)
{
    fs_temp *t = check_open(L);
    lua_Integer mode = luaL_checkinteger(L, 2);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "not a file mode");
    if (fchmod(t->fd, (mode_t)mode) != 0)
        return os_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int t_sync(lua_State *L)
{
    fs_temp *t = check_open(L);
    if (fsync(t->fd) != 0)
        return os_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static void t_close_fd(fs_temp *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

static int t_discard(lua_State *L)
{
    fs_temp *t = check_temp(L);
    t_close_fd(t);
    if (t->live) {
        unlink(t->path);
        unlink_live(t);
    }
    return 0;
}

/* fsync the directory holding path so that a rename into it is durable. */
static int sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = fsync(fd) != 0 ? errno : 0;
    close(fd);
    /* some file systems cannot fsync a directory: the rename happened anyway */
    return (err == EINVAL || err == EROFS) ? 0 : err;
}

static int t_commit(lua_State *L)
{
    fs_temp *t = check_open(L);
    const char *final = luaL_checkstring(L, 2);
    if (t->mem)
        return luaL_error(L, "giro.fs: commit: an anonymous file has no place to go (use copy_to)");
    int err = fsync(t->fd) != 0 ? errno : 0;
    if (close(t->fd) != 0 && err == 0)
        err = errno;
    t->fd = -1;
    if (err == 0 && rename(t->path, final) != 0)
        err = errno;
    if (err != 0) {
        unlink(t->path);
        unlink_live(t);
        return os_fail(L, err);
    }
    unlink_live(t);
    err = sync_dir_of(final);
    if (err != 0)
        return os_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int t_copy_to(lua_State *L)
{
    fs_temp *t = check_open(L);
    luaL_Stream *out = luaL_checkudata(L, 2, LUA_FILEHANDLE);
    if (out->closef == NULL)
        return luaL_error(L, "giro.fs: copy_to: the file is closed");
    if (lseek(t->fd, 0, SEEK_SET) < 0)
        return os_fail(L, errno);
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(t->fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return os_fail(L, errno);
        }
        if (n == 0)
            break;
        if (fwrite(buf, 1, (size_t)n, out->f) != (size_t)n)
            return os_fail(L, errno ? errno : EIO);
    }
    if (fflush(out->f) != 0)
        return os_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------------ */

static volatile sig_atomic_t pending_signal;   /* set by the handler, taken by the hook */
static volatile sig_atomic_t caught_signal;    /* set by the handler, cleared by Lua */

/* Seconds a SIGTERM waits for Lua code to take it (a C call can block: a lock
 * wait in the database, a network read) before force_exit. */
enum { TERM_GRACE = 3 };

/* The last resort when Lua cannot run the cleanup: remove the live temporary
 * files (unlink is async-signal-safe) and end by the signal. */
static void force_exit(int sig)
{
    for (fs_temp *t = live_temps; t != NULL; t = t->next)
        unlink(t->path);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

static void on_signal(int sig)
{
    /* a second signal (before the first was cleared: the REPL clears it after
     * stopping a chunk) means "now", whatever Lua is doing with the first */
    if (caught_signal != 0)
        force_exit(sig);
    pending_signal = sig;
    caught_signal = sig;
    if (sig == SIGTERM)
        alarm(TERM_GRACE);
}

static void on_alarm(int sig)
{
    (void)sig;
    if (pending_signal != 0)
        force_exit(pending_signal);
}

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    int sig = pending_signal;
    if (sig == 0)
        return;
    pending_signal = 0;    /* raise once: cleanup code must be able to run */
    alarm(0);              /* Lua took it: no forced exit */
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "interrupted");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, sig);
    lua_setfield(L, -2, "signal");
    lua_pushstring(L, sig == SIGINT ? "interrupted (SIGINT)" : "interrupted (SIGTERM)");
    lua_setfield(L, -2, "message");
    lua_error(L);
}

static int l_catch_signals(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;    /* no SA_RESTART: a read blocked on a pipe must return */
    struct sigaction al = sa;
    al.sa_handler = on_alarm;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGALRM, &al, NULL) != 0)
        return os_fail(L, errno);
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_caught(lua_State *L)
{
    int sig = caught_signal;
    if (sig == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, sig);
    return 1;
}

static int l_clear_caught(lua_State *L)
{
    (void)L;
    alarm(0);
    pending_signal = 0;
    caught_signal = 0;
    return 0;
}

static int l_die(lua_State *L)
{
    int sig = (int)luaL_checkinteger(L, 1);
    luaL_argcheck(L, sig == SIGINT || sig == SIGTERM, 1, "SIGINT or SIGTERM");
    fflush(NULL);
    signal(sig, SIG_DFL);
    raise(sig);
    return luaL_error(L, "giro.fs: raise(%d) returned", sig);
}

static const luaL_Reg temp_methods[] = {
    { "fd", t_fd },
    { "path", t_path },
    { "write", t_write },
    { "sync", t_sync },
    { "chmod", t_chmod },
    { "commit", t_commit },
    { "copy_to", t_copy_to },
    { "discard", t_discard },
    { NULL, NULL }
};

static const luaL_Reg temp_meta[] = {
    { "__gc", t_discard },
    { "__close", t_discard },
    { NULL, NULL }
};

static const luaL_Reg fs_funcs[] = {
    { "lstat", l_lstat },
    { "stat", l_stat },
    { "resolve", l_resolve },
    { "list", l_list },
    { "unlink", l_unlink },
    { "writable", l_writable },
    { "alive", l_alive },
    { "pid", l_pid },
    { "temp", l_temp },
    { "memtemp", l_memtemp },
    { "catch_signals", l_catch_signals },
    { "caught", l_caught },
    { "clear_caught", l_clear_caught },
    { "die", l_die },
    { NULL, NULL }
};

int luaopen_giro_fs(lua_State *L)
{
    luaL_newmetatable(L, "giro.fs.dir");
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, TEMP_MT);
    luaL_setfuncs(L, temp_meta, 0);
    luaL_newlib(L, temp_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, fs_funcs);
    return 1;
}
