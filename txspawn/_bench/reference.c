/*
 * reference.c: the practical limit for spawning and reaping a child on Linux.
 *
 * This is the "C" column of `python -m txspawn bench`: a plain posix_spawn +
 * waitpid loop with no event loop, no bookkeeping and no language runtime.
 * txspawn and stock Twisted are compared against it in the same run.  It is
 * shipped as source inside the txspawn package and compiled with `cc -O2` at
 * bench time (see txspawn/_bench/_creference.py), so it always matches the
 * machine it runs on.
 *
 * Two modes:
 *
 *   reference stamp FILE DELAY_US
 *       The exit-latency child: sleep DELAY_US, write the CLOCK_MONOTONIC
 *       time (int64 nanoseconds, native byte order) at offset 0 of FILE, and
 *       _exit(0).  Every implementation (txspawn, Twisted, this program) uses
 *       this same child, so the child's own cost is identical in every
 *       column.
 *
 *   reference serve IDLE TARGET_FDS BALLAST_MIB SCRATCH_FILE
 *       The benchmark worker.  Setup: spawn IDLE children (`/bin/cat` with
 *       three pipes, like the other implementations' idle children), open
 *       /dev/null (O_CLOEXEC) until TARGET_FDS fds are open so the kernel's
 *       per-fd costs (fd table copy at clone, close-on-exec at exec) are the
 *       same as in the implementation it is compared with, allocate and
 *       touch BALLAST_MIB MiB, then print "ready <fds> <setup seconds>".
 *       Then one command per line on stdin, one answer line on stdout
 *       ("ok <value> <value> ..." or "error <message>"):
 *
 *         spawn N EXECUTABLE     N sequential spawns of EXECUTABLE (no
 *                                arguments besides argv[0]) with stdin,
 *                                stdout and stderr pipes; each waits for EOF
 *                                on both read pipes and reaps; answers N
 *                                latencies in microseconds.
 *         exit N DELAY_US        N sequential exit-latency samples: spawn
 *                                `reference stamp` with fds 0-2 closed,
 *                                block in waitpid, answer now - stamp in
 *                                microseconds.
 *         pipe MIB               spawn `dd if=/dev/zero bs=1M count=MIB`
 *                                with three pipes, read stdout with a 1 MiB
 *                                buffer until EOF, reap; answer MiB/s.
 *         fds                    answer the number of open fds.
 *         quit                   close the idle children's pipes, reap
 *                                them, answer "ok" and exit.
 *
 * The environment of every child is empty, as with Twisted's default
 * `env={}`.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *emptyEnv[] = {NULL};
static char selfPath[4096];
static const char *scratchFile;

struct child {
    pid_t pid;
    int fds[3]; /* parent ends: stdin writer, stdout reader, stderr reader */
};

static int64_t
nowNs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
closeQuietly(int fd)
{
    if (fd >= 0) {
        close(fd);
    }
}

/*
 * Spawn path with argv and stdin/stdout/stderr pipes.  All our fds are
 * O_CLOEXEC, so the child starts with exactly 0, 1 and 2, which is what
 * Twisted's default childFDs gives.  Returns 0 or an errno value.
 */
static int
spawnWithPipes(const char *path, char *const argv[], struct child *c)
{
    int in[2], out[2], err[2];
    posix_spawn_file_actions_t fa;
    int rc;

    if (pipe2(in, O_CLOEXEC) < 0) {
        return errno;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        rc = errno;
        close(in[0]);
        close(in[1]);
        return rc;
    }
    if (pipe2(err, O_CLOEXEC) < 0) {
        rc = errno;
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return rc;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    rc = posix_spawn(&c->pid, path, &fa, NULL, argv, emptyEnv);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return rc;
    }
    c->fds[0] = in[1];
    c->fds[1] = out[0];
    c->fds[2] = err[0];
    return 0;
}

/* Read fd until EOF into buf; returns the byte count or -1. */
static long long
drain(int fd, char *buf, size_t size)
{
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, size);
        if (n > 0) {
            total += n;
        }
        else if (n == 0) {
            return total;
        }
        else if (errno != EINTR) {
            return -1;
        }
    }
}

static int
reap(pid_t pid, int *status)
{
    for (;;) {
        if (waitpid(pid, status, 0) == pid) {
            return 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

static int
countFds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int
raiseNofile(rlim_t needed)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return -1;
    }
    if (rl.rlim_max < needed) {
        /* Needs CAP_SYS_RESOURCE; without it, make do with the hard limit
         * (setup then fails with EMFILE if that is really too low). */
        struct rlimit wanted = {needed, needed};
        if (setrlimit(RLIMIT_NOFILE, &wanted) == 0) {
            return 0;
        }
    }
    rl.rlim_cur = rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static void
cmdSpawn(long n, const char *executable)
{
    char *argv[] = {(char *)executable, NULL};
    char buf[4096];
    double *samples = calloc((size_t)n, sizeof(double));
    long i;
    if (samples == NULL) {
        printf("error out of memory\n");
        return;
    }
    for (i = 0; i < n; i++) {
        struct child c;
        int status, rc;
        int64_t t0 = nowNs();
        rc = spawnWithPipes(executable, argv, &c);
        if (rc != 0) {
            printf("error posix_spawn %s: %s\n", executable, strerror(rc));
            free(samples);
            return;
        }
        close(c.fds[0]);
        if (drain(c.fds[1], buf, sizeof buf) < 0 ||
            drain(c.fds[2], buf, sizeof buf) < 0) {
            printf("error read: %s\n", strerror(errno));
            free(samples);
            return;
        }
        close(c.fds[1]);
        close(c.fds[2]);
        if (reap(c.pid, &status) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            printf("error child %d did not exit 0\n", (int)c.pid);
            free(samples);
            return;
        }
        samples[i] = (double)(nowNs() - t0) / 1e3;
    }
    printf("ok");
    for (i = 0; i < n; i++) {
        printf(" %.3f", samples[i]);
    }
    printf("\n");
    free(samples);
}

static void
cmdExit(long n, long delayUs)
{
    char delay[32];
    char *argv[] = {"reference", "stamp", (char *)scratchFile, delay, NULL};
    double *samples = calloc((size_t)n, sizeof(double));
    posix_spawn_file_actions_t fa;
    int fd = open(scratchFile, O_RDWR | O_CLOEXEC);
    long i;
    if (samples == NULL || fd < 0) {
        printf("error setup: %s\n", strerror(errno));
        free(samples);
        closeQuietly(fd);
        return;
    }
    snprintf(delay, sizeof delay, "%ld", delayUs);
    /* childFDs={} in Twisted terms: the child starts with no fds at all. */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, 0);
    posix_spawn_file_actions_addclose(&fa, 1);
    posix_spawn_file_actions_addclose(&fa, 2);
    for (i = 0; i < n; i++) {
        pid_t pid;
        int status, rc;
        int64_t stamp = 0, ended;
        if (pwrite(fd, &stamp, sizeof stamp, 0) != sizeof stamp) {
            printf("error pwrite: %s\n", strerror(errno));
            break;
        }
        rc = posix_spawn(&pid, selfPath, &fa, NULL, argv, emptyEnv);
        if (rc != 0) {
            printf("error posix_spawn %s: %s\n", selfPath, strerror(rc));
            break;
        }
        if (reap(pid, &status) < 0) {
            printf("error waitpid: %s\n", strerror(errno));
            break;
        }
        ended = nowNs();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            pread(fd, &stamp, sizeof stamp, 0) != sizeof stamp || stamp == 0) {
            printf("error stamp child %d failed\n", (int)pid);
            break;
        }
        samples[i] = (double)(ended - stamp) / 1e3;
    }
    if (i == n) {
        printf("ok");
        for (i = 0; i < n; i++) {
            printf(" %.3f", samples[i]);
        }
        printf("\n");
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    free(samples);
}

static void
cmdPipe(long mib)
{
    static char buf[1 << 20];
    char count[64];
    char *argv[] = {"dd", "if=/dev/zero", "bs=1M", count, "status=none", NULL};
    struct child c;
    long long got;
    int status, rc;
    int64_t t0, t1;
    snprintf(count, sizeof count, "count=%ld", mib);
    t0 = nowNs();
    rc = spawnWithPipes("/bin/dd", argv, &c);
    if (rc != 0) {
        printf("error posix_spawn /bin/dd: %s\n", strerror(rc));
        return;
    }
    close(c.fds[0]);
    got = drain(c.fds[1], buf, sizeof buf);
    drain(c.fds[2], buf, sizeof buf);
    close(c.fds[1]);
    close(c.fds[2]);
    if (reap(c.pid, &status) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        printf("error dd did not exit 0\n");
        return;
    }
    t1 = nowNs();
    if (got != (long long)mib << 20) {
        printf("error read %lld bytes, expected %lld\n", got,
               (long long)mib << 20);
        return;
    }
    printf("ok %.3f\n", (double)mib / ((double)(t1 - t0) / 1e9));
}

static int
serve(long idle, long targetFds, long ballastMib)
{
    struct child *children = calloc((size_t)(idle > 0 ? idle : 1),
                                    sizeof(struct child));
    char *catArgv[] = {"cat", NULL};
    char line[512];
    int64_t t0 = nowNs();
    long i;

    if (children == NULL) {
        printf("error out of memory\n");
        return 1;
    }
    if (raiseNofile((rlim_t)(targetFds > idle * 4 ? targetFds : idle * 4) +
                    256) < 0) {
        printf("error setrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
        return 1;
    }
    for (i = 0; i < idle; i++) {
        int rc = spawnWithPipes("/bin/cat", catArgv, &children[i]);
        if (rc != 0) {
            printf("error spawning idle child %ld: %s\n", i, strerror(rc));
            idle = i;
            break;
        }
    }
    /* Count once: listing /proc/self/fd per padding fd would be
     * quadratic. */
    for (i = countFds(); i < targetFds; i++) {
        if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
            printf("error opening padding fds: %s\n", strerror(errno));
            return 1;
        }
    }
    if (ballastMib > 0) {
        size_t size = (size_t)ballastMib << 20;
        char *ballast = mmap(NULL, size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ballast == MAP_FAILED) {
            printf("error mmap ballast: %s\n", strerror(errno));
            return 1;
        }
        memset(ballast, 1, size); /* touch every page: really resident */
    }
    printf("ready %d %.3f\n", countFds(), (double)(nowNs() - t0) / 1e9);
    fflush(stdout);

    while (fgets(line, sizeof line, stdin) != NULL) {
        char word[16], arg[4096];
        long a = 0, b = 0;
        int fields = sscanf(line, "%15s %ld %4095s", word, &a, arg);
        if (fields >= 3 && strcmp(word, "spawn") == 0) {
            cmdSpawn(a, arg);
        }
        else if (fields >= 3 && strcmp(word, "exit") == 0) {
            b = strtol(arg, NULL, 10);
            cmdExit(a, b);
        }
        else if (fields >= 2 && strcmp(word, "pipe") == 0) {
            cmdPipe(a);
        }
        else if (fields >= 1 && strcmp(word, "fds") == 0) {
            printf("ok %d\n", countFds());
        }
        else if (fields >= 1 && strcmp(word, "quit") == 0) {
            break;
        }
        else {
            printf("error unknown command: %s", line);
        }
        fflush(stdout);
    }
    /* Closing stdin makes each cat exit; reap exactly our own pids. */
    for (i = 0; i < idle; i++) {
        close(children[i].fds[0]);
        close(children[i].fds[1]);
        close(children[i].fds[2]);
    }
    for (i = 0; i < idle; i++) {
        int status;
        reap(children[i].pid, &status);
    }
    free(children);
    printf("ok\n");
    fflush(stdout);
    return 0;
}

static int
stamp(const char *file, long delayUs)
{
    struct timespec delay = {delayUs / 1000000, (delayUs % 1000000) * 1000};
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    int64_t now;
    if (fd < 0) {
        _exit(2);
    }
    while (nanosleep(&delay, &delay) < 0 && errno == EINTR) {
    }
    /* The stamp is the last thing before _exit: what the parent measures
     * is pwrite's return + process teardown + its own notification path. */
    now = nowNs();
    if (pwrite(fd, &now, sizeof now, 0) != sizeof now) {
        _exit(3);
    }
    _exit(0);
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "stamp") == 0) {
        return stamp(argv[2], strtol(argv[3], NULL, 10));
    }
    if (argc == 6 && strcmp(argv[1], "serve") == 0) {
        ssize_t n = readlink("/proc/self/exe", selfPath, sizeof selfPath - 1);
        if (n < 0) {
            perror("readlink /proc/self/exe");
            return 1;
        }
        selfPath[n] = '\0';
        scratchFile = argv[5];
        return serve(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10),
                     strtol(argv[4], NULL, 10));
    }
    fprintf(stderr,
            "usage: %s stamp FILE DELAY_US\n"
            "       %s serve IDLE TARGET_FDS BALLAST_MIB SCRATCH_FILE\n",
            argv[0], argv[0]);
    return 2;
}
