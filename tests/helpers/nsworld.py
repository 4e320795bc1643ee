# -*- test-case-name: tests.test_namespaces -*-
"""
A child program that prints one JSON line describing the namespaces it
lives in.

Spawned by the namespace tests (both engines must report identical
worlds), it reports:

  - C{ns}: the inode number of every C{/proc/self/ns/*} link (C{pid_for_children}
    and C{time_for_children} included);
  - C{uid_map}, C{gid_map}, C{setgroups}: the text of those C{/proc/self}
    files, exactly as the kernel gives it back (the tests compare their
    whitespace-split numbers);
  - C{uid}, C{gid} (real, effective, saved), C{groups};
  - C{pid}, C{ppid}, C{nspid} (the C{NSpid} line of C{/proc/self/status}:
    this process's pid in every pid namespace from the outermost one it is
    visible in down to its own), C{procPids} (the numeric entries of
    C{/proc}, sorted);
  - C{hostname};
  - C{loFlags} (the C{SIOCGIFFLAGS} of C{lo}, or C{None}), and C{loopback}:
    C{"ok"} when a TCP socket bound to C{127.0.0.1} accepts a connection
    from another one, else the name of the errno that stopped it;
  - C{monotonic}, C{boottime}: C{clock_gettime} of both clocks (seconds);
  - C{rootPropagation}: the optional fields of the C{/} mount in
    C{/proc/self/mountinfo} (C{shared}, C{master}; none means private),
    their peer group numbers dropped; C{procMountCount}: how many mounts
    sit on C{/proc} (a fresh C{/proc} adds one over the inherited one);
  - C{capEff}: the C{CapEff} mask of C{/proc/self/status}, as an int.

It needs only the standard library and only reads, so it runs under any
Python 3.9+ as any user (nobody included, inside any map).

Usage::

    nsworld.py [--mount-tmpfs DIR] [--ready]

C{--mount-tmpfs DIR} first mounts a tmpfs on C{DIR} (the mount propagation
tests look for it in the parent's C{mountinfo}); the report gets
C{mounted}: C{"ok"} or the errno name.  C{--ready} then prints C{ready} on
its own line after the report and waits for end of file on stdin before
exiting (so the mount is still there while the parent looks).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import socket
import struct
import sys
import time

__all__: list[str] = []

# <linux/sockios.h>
_SIOCGIFFLAGS = 0x8913


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _namespaces() -> dict[str, int]:
    result = {}
    for name in sorted(os.listdir("/proc/self/ns")):
        try:
            result[name] = os.stat(f"/proc/self/ns/{name}").st_ino
        except OSError:
            continue
    return result


def _status() -> dict[str, str]:
    result = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            result[key] = value.strip()
    return result


def _loFlags() -> int | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        answer = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)
    except OSError:
        return None
    finally:
        sock.close()
    flags: int = struct.unpack("16sH14x", answer)[1]
    return flags


def _loopback() -> str:
    """
    Whether a TCP connection over C{127.0.0.1} works: bind, listen, connect,
    accept.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        accepted.close()
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e.errno))
    finally:
        client.close()
        server.close()
    return "ok"


def _mountinfo() -> list[list[str]]:
    text = _read("/proc/self/mountinfo") or ""
    return [line.split() for line in text.splitlines()]


def _propagation(fields: list[str]) -> list[str]:
    """
    The optional fields of one mountinfo line (between the mount options
    and C{-}), without their peer group numbers.
    """
    optional = fields[6 : fields.index("-")]
    return sorted(tag.split(":")[0] for tag in optional)


def _mount(target: str) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", target.encode(), b"tmpfs", 0, None) != 0:
        return errno.errorcode.get(ctypes.get_errno(), "?")
    return "ok"


def _report(mounted: str | None) -> dict[str, object]:
    status = _status()
    mounts = _mountinfo()
    root = [line for line in mounts if line[4] == "/"]
    proc = [line for line in mounts if line[4] == "/proc"]
    report: dict[str, object] = {
        "ns": _namespaces(),
        "uid_map": _read("/proc/self/uid_map"),
        "gid_map": _read("/proc/self/gid_map"),
        "setgroups": (_read("/proc/self/setgroups") or "").strip(),
        "uid": list(os.getresuid()),
        "gid": list(os.getresgid()),
        "groups": sorted(os.getgroups()),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "nspid": [int(p) for p in status.get("NSpid", "").split()],
        "procPids": sorted(int(n) for n in os.listdir("/proc") if n.isdigit()),
        "hostname": socket.gethostname(),
        "loFlags": _loFlags(),
        "loopback": _loopback(),
        "monotonic": time.clock_gettime(time.CLOCK_MONOTONIC),
        "boottime": time.clock_gettime(time.CLOCK_BOOTTIME),
        "rootPropagation": _propagation(root[-1]) if root else None,
        "procMountCount": len(proc),
        "capEff": int(status["CapEff"], 16),
    }
    if mounted is not None:
        report["mounted"] = mounted
    return report


def main(argv: list[str]) -> None:
    """
    Print the report (and do what the options ask).

    @param argv: C{sys.argv}.
    """
    mounted = None
    if "--mount-tmpfs" in argv:
        mounted = _mount(argv[argv.index("--mount-tmpfs") + 1])
    line = json.dumps(_report(mounted), sort_keys=True) + "\n"
    if "--ready" in argv:
        line += "ready\n"
    data = line.encode()
    while data:
        data = data[os.write(1, data) :]
    if "--ready" in argv:
        while os.read(0, 4096):
            pass


if __name__ == "__main__":
    main(sys.argv)
