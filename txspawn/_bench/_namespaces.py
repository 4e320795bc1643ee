# -*- test-case-name: tests.test_bench -*-
"""
The namespace rows of C{python -m txspawn bench} (C{--scenario
namespaces}): C{/bin/true} spawned and reaped by txspawn in fresh
namespaces, against a plain txspawn spawn and against util-linux
C{unshare(1)} doing the same work (spawned by txspawn too, so the anchor
pays the same plain spawn plus its own fork and exec).

All the rows form one suite: every repetition times each row's batch back
to back, in one worker per setup (the small parent and the 2 GiB one), so
each ratio of the suite's L{Pair}s is paired repetition by repetition.
Only the txspawn column runs them: stock Twisted has no namespaces, and the
C column's plain loop is the plain row here.

The map written by the parent (C{ns-idmap}) maps other ids than our own,
which needs root; as another user that row reports the spawn's error.
util-linux writes such maps only through C{newuidmap}, so that row's anchor
is C{unshare -Ur}, the nearest command.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping

from txspawn._bench._model import Pair, Params, Scenario, Setup, Task, pairedRow

__all__ = ["NAMESPACE_SCENARIOS", "SUITE"]

#: The suite's name, also a C{--scenario} name selecting every row of it.
SUITE = "namespaces"

#: user+pid+mount+uts+ipc+cgroup with a fresh /proc.
_ISOLATED: Mapping[str, object] = {
    "user": True,
    "pid": True,
    "mount": True,
    "uts": True,
    "ipc": True,
    "cgroup": True,
    "mountProc": True,
}
#: All of them, plus net with lo up.
_NETWORKED: Mapping[str, object] = {**_ISOLATED, "net": True, "loopback": True}

#: C{ip(8)}, for the anchor that brings lo up (sbin is often off PATH).
_IP = shutil.which("ip", path=f"{os.defpath}:/usr/sbin:/sbin")

_MEASURES = "the time from spawnProcess to processEnded for /bin/true"
_VS_UNSHARE = (
    "a namespace spawn must cost no more than util-linux unshare doing the "
    "same work (unshare forks, and runs one more program before the command)"
)
_BIG = (
    "a parent holding 2 GiB must not make a namespace spawn slower: no "
    "page-table copy (vfork for a self-map; for maps the parent writes, "
    "CLONE_VM without CLONE_VFORK while the parent writes them)"
)


def _idMap(own: int) -> str:
    """
    A map of several ranges: our id as 0, and 1000 others (ranges must not
    overlap, so never ours).
    """
    other = 200000 if 100000 <= own < 101000 else 100000
    return f"0 {own} 1,1 {other} 1000"


def _txspawn(
    namespaces: Callable[[], Mapping[str, object]] | None, ballast: bool
) -> Callable[[Params], tuple[Setup, Task]]:
    def plan(p: Params) -> tuple[Setup, Task]:
        options = {} if namespaces is None else {"namespaces": dict(namespaces())}
        setup = Setup(ballastMiB=p.ballastMiB if ballast else 0)
        return setup, Task("spawn", p.spawnCount, "/bin/true", options)

    return plan


def _unshare(*args: str) -> Callable[[Params], tuple[Setup, Task]]:
    def plan(p: Params) -> tuple[Setup, Task]:
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        return Setup(), Task("spawn", p.spawnCount, unshare, args=("unshare", *args))

    return plan


def _selfMap() -> Mapping[str, object]:
    return {"user": True}


def _parentMaps() -> Mapping[str, object]:
    return {
        "user": True,
        "uidMap": _idMap(os.geteuid()),
        "gidMap": _idMap(os.getegid()),
    }


def _row(
    name: str,
    title: str,
    what: str,
    plan: Callable[[Params], tuple[Setup, Task]],
    *pairs: Pair,
) -> Scenario:
    return pairedRow(name, title, f"{_MEASURES}, {what}", plan, SUITE, "ratios", pairs)


if _IP is None:
    _NET_TITLE = "unshare -Urnpf --mount-proc true (no ip(8) here: lo stays down)"
    _NET_ARGS: tuple[str, ...] = ("-Urnpf", "--mount-proc", "/bin/true")
else:
    _NET_TITLE = "unshare -Urnpf --mount-proc sh -c 'ip link set lo up; true'"
    _NET_ARGS = (
        "-Urnpf",
        "--mount-proc",
        "/bin/sh",
        "-c",
        f"{_IP} link set lo up; true",
    )

#: The suite's rows, in report order.
NAMESPACE_SCENARIOS: tuple[Scenario, ...] = (
    _row("ns-plain", "plain spawn of /bin/true", "plain", _txspawn(None, False)),
    _row(
        "ns-user",
        "user namespace, self-map",
        "in a new user namespace whose map the child writes (root inside)",
        _txspawn(_selfMap, False),
        Pair(
            "ns-plain",
            1.3,
            "a user namespace with a self-map should cost little more than a "
            "plain spawn: the child writes its own map and keeps vfork",
        ),
        Pair("ns-unshare-user", 1.0, _VS_UNSHARE),
    ),
    _row(
        "ns-isolated",
        "user+pid+mount+uts+ipc+cgroup, /proc",
        "in new user, pid, mount, uts, ipc and cgroup namespaces with a fresh "
        "/proc (txspawn's init is pid 1)",
        _txspawn(lambda: _ISOLATED, False),
        Pair(
            "ns-plain",
            2.5,
            "a sandbox of six namespaces and a fresh /proc should cost at most "
            "2.5 plain spawns",
        ),
        Pair("ns-unshare-pid", 1.0, _VS_UNSHARE),
    ),
    _row(
        "ns-net",
        "the same + net, lo up",
        "in the same namespaces plus a network namespace with lo up",
        _txspawn(lambda: _NETWORKED, False),
        Pair(
            "ns-plain",
            5.0,
            "with a network namespace too (the kernel's slowest to make) and "
            "lo up, at most 5 plain spawns",
        ),
        Pair("ns-unshare-net", 1.0, _VS_UNSHARE),
    ),
    _row(
        "ns-idmap",
        "user namespace, maps written by the parent",
        "in a new user namespace with a two-range map (0 = our id, 1-1000 = "
        "other ids) that the parent writes while the child waits",
        _txspawn(_parentMaps, False),
        Pair("ns-plain", None, "what writing the maps from the parent costs"),
        Pair(
            "ns-unshare-user",
            1.0,
            f"{_VS_UNSHARE} (the nearest: unshare writes such maps only "
            f"through newuidmap)",
        ),
    ),
    _row(
        "ns-unshare-user",
        "unshare -Ur true",
        "for util-linux unshare -Ur /bin/true (the anchor of ns-user)",
        _unshare("-Ur", "/bin/true"),
    ),
    _row(
        "ns-unshare-pid",
        "unshare -Urpf --mount-proc true",
        "for util-linux unshare -Urpf --mount-proc /bin/true (the anchor of "
        "ns-isolated)",
        _unshare("-Urpf", "--mount-proc", "/bin/true"),
    ),
    _row(
        "ns-unshare-net",
        _NET_TITLE,
        f"for util-linux {_NET_TITLE} (the anchor of ns-net)",
        _unshare(*_NET_ARGS),
    ),
    _row(
        "ns-user-2g",
        "user namespace, self-map, 2 GiB parent",
        "in a new user namespace with a self-map, from a parent holding 2 GiB",
        _txspawn(_selfMap, True),
        Pair("ns-user", 1.5, _BIG),
    ),
    _row(
        "ns-idmap-2g",
        "maps written by the parent, 2 GiB parent",
        "in a new user namespace with a map the parent writes, from a parent "
        "holding 2 GiB",
        _txspawn(_parentMaps, True),
        Pair("ns-idmap", 1.5, _BIG),
    ),
)
