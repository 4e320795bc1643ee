# -*- test-case-name: tests.test_pyspawn -*-
"""
A child program that prints JSON describing its own world.

Spawned by the engine tests (both engines must produce identical reports),
it reports: open fds (with C{FD_CLOEXEC}, access mode, file identity and
type), cwd, real/effective/saved uid and gid, supplementary groups, umask,
every C{RLIMIT_*}, the signal sets of C{/proc/self/status}, session id and
process group, the controlling tty, namespace inodes, cgroups, environment,
argv and the parent-death signal.

Usage::

    report.py [--out PATH] [ANY ...]

The report goes to C{PATH} (created mode 0666) or, by default, to fd 1.
Extra arguments are ignored (they show up in C{argv}).

Caveat: the Python interpreter itself sets SIGPIPE and SIGXFSZ to
C{SIG_IGN} at startup, so C{SigIgn} always contains those two; tests that
check dispositions exactly exec C{cat /proc/self/status} instead.

The fd listing is taken first, before anything else opens a file, and the
directory fd it used is excluded (it is closed by the time its flags are
queried), so the report's own files never pollute it.
"""

from __future__ import annotations

import fcntl
import os

# The fd list first: nothing below may open an fd before this line.
_FDS = os.listdir("/proc/self/fd")
_FD_INFO: dict[str, dict[str, object]] = {}
for _name in _FDS:
    _fd = int(_name)
    try:
        _fdflags = fcntl.fcntl(_fd, fcntl.F_GETFD)
    except OSError:
        continue  # the listing's own directory fd, now closed
    _flflags = fcntl.fcntl(_fd, fcntl.F_GETFL)
    _st = os.fstat(_fd)
    try:
        _target = os.readlink(f"/proc/self/fd/{_fd}")
    except OSError:  # pragma: no cover - raced with nothing; defensive
        _target = ""
    _FD_INFO[_name] = {
        "cloexec": bool(_fdflags & fcntl.FD_CLOEXEC),
        "accmode": _flflags & os.O_ACCMODE,
        "dev": _st.st_dev,
        "ino": _st.st_ino,
        "rdev": _st.st_rdev,
        "mode": _st.st_mode,
        "target": _target,
    }

import ctypes  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402

__all__: list[str] = []


def _fileType(mode: int) -> str:
    for test, name in [
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "chr"),
        (stat.S_ISREG, "reg"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISSOCK, "sock"),
        (stat.S_ISBLK, "blk"),
        (stat.S_ISLNK, "lnk"),
    ]:
        if test(mode):
            return name
    return "unknown"


def _status() -> dict[str, str]:
    result = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            result[key] = value.strip()
    return result


def _statFields() -> dict[str, int]:
    with open("/proc/self/stat") as f:
        data = f.read()
    # The command name may contain spaces and parentheses: split after the
    # last ")".  Fields after it start at field 3 (state).
    rest = data[data.rindex(")") + 2 :].split()
    return {
        "ppid": int(rest[1]),
        "pgrp": int(rest[2]),
        "session": int(rest[3]),
        "tty_nr": int(rest[4]),
        "tpgid": int(rest[5]),
    }


def _namespaces() -> dict[str, int]:
    result = {}
    for name in sorted(os.listdir("/proc/self/ns")):
        try:
            result[name] = os.stat(f"/proc/self/ns/{name}").st_ino
        except OSError:
            continue
    return result


def _rlimits() -> dict[str, list[int]]:
    result = {}
    for name in sorted(dir(resource)):
        if name.startswith("RLIMIT_"):
            soft, hard = resource.getrlimit(getattr(resource, name))
            result[name] = [soft, hard]
    return result


def _pdeathsig() -> int | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - static interpreter
        return None
    value = ctypes.c_int(0)
    # PR_GET_PDEATHSIG = 2
    if libc.prctl(2, ctypes.byref(value), 0, 0, 0) != 0:
        return None
    return value.value


def _report() -> dict[str, object]:
    status = _status()
    fds = {}
    for name, info in _FD_INFO.items():
        info = dict(info)
        info["type"] = _fileType(int(info.pop("mode")))  # type: ignore[call-overload]
        fds[name] = info
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None
    with open("/proc/self/cgroup") as f:
        cgroup = f.read()
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "fds": fds,
        "cwd": cwd,
        "uid": list(os.getresuid()),
        "gid": list(os.getresgid()),
        "groups": sorted(os.getgroups()),
        "umask": int(status["Umask"], 8),
        "rlimits": _rlimits(),
        "SigIgn": int(status["SigIgn"], 16),
        "SigBlk": int(status["SigBlk"], 16),
        "SigCgt": int(status["SigCgt"], 16),
        "sid": os.getsid(0),
        "pgid": os.getpgid(0),
        "stat": _statFields(),
        "namespaces": _namespaces(),
        "cgroup": cgroup,
        "env": {os.fsdecode(k): os.fsdecode(v) for k, v in sorted(os.environb.items())},
        "argv": sys.argv,
        "pdeathsig": _pdeathsig(),
    }


def main(argv: list[str]) -> None:
    """
    Write the report.

    @param argv: C{sys.argv}.
    """
    data = json.dumps(_report(), sort_keys=True).encode()
    if "--out" in argv:
        path = argv[argv.index("--out") + 1]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    else:
        fd = 1
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        if fd != 1:
            os.close(fd)


if __name__ == "__main__":
    main(sys.argv)
