# -*- test-case-name: tests.test_cgroupoptions -*-
"""
The cgroup options, public as L{txspawn.options.Cgroup} and
L{txspawn.options.CgroupStats} (which re-exports them from here, to keep
each module to one concept): the cgroup v2 leaf a child is placed in, the
limits written to it, and what was read from it when the child ended.
Like L{txspawn.options}, this is public vocabulary: it imports nothing of
txspawn.  A L{Cgroup} is validated when built (each mistake a
L{TypeError} or L{ValueError} naming the field); nothing is looked up on
the filesystem until a child is spawned with it.

@since: txspawn 0.1
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence

from attrs import Attribute, field, frozen

__all__ = [
    "CPU_PERIOD",
    "Cgroup",
    "CgroupStats",
    "checkCgroup",
]

#: The C{cpu.max} period, in microseconds, of a limit given as a number of
#: CPUs (the kernel's default period).
CPU_PERIOD = 100_000

#: The shortest and longest C{cpu.max} period the kernel takes, in
#: microseconds (C{min_cfs_quota_period}, C{max_cfs_quota_period}).
_PERIOD_MIN = 1_000
_PERIOD_MAX = 1_000_000

#: The smallest C{cpu.max} quota the kernel takes (C{min_cfs_quota_period}).
_QUOTA_MIN = 1_000

#: The largest C{cpu.max} quota the kernel takes, in microseconds
#: (C{max_cfs_runtime}: C{MAX_BW}, C{2**44 - 1}).
_QUOTA_MAX = 2**44 - 1

#: The largest byte count taken for C{memory.max} and C{memory.high}: the
#: kernel parses them as C{u64} and clamps to what it can count; staying in
#: C{int64} keeps every reader of the value exact.
_BYTES_MAX = 2**63 - 1

#: The largest C{pids.max} (C{PID_MAX_LIMIT}: the kernel refuses
#: C{PIDS_MAX} and more).
_PIDS_MAX = 4 * 1024 * 1024

#: The C{io.weight} range (C{CGROUP_WEIGHT_MIN}, C{CGROUP_WEIGHT_MAX}).
_WEIGHT_MIN = 1
_WEIGHT_MAX = 10_000

#: The suffixes of a size given as text, as the kernel's C{memparse} reads
#: them (1024-based, either case).
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SIZE = re.compile(r"([0-9]+)([kmgtp]?)", re.IGNORECASE | re.ASCII)


def _isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checkParent(value: str | bytes | os.PathLike[str] | None) -> str | None:
    """
    Validate and normalise L{Cgroup.parent}: an absolute path, made
    normal (C{os.path.normpath}) and kept as text.  Whether it is a cgroup
    v2 directory is found out when a child is spawned.
    """
    name = "Cgroup.parent"
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a path (str) or None, not {value!r}")
    path = os.fsdecode(value)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a path (str) or None, not {value!r}")
    if "\0" in path:
        raise ValueError(f"{name} contains NUL: {path!r}")
    if not path.startswith("/"):
        raise ValueError(
            f"{name} must be an absolute path (a directory under the cgroup2 "
            f"mount, such as /sys/fs/cgroup/...), not {path!r}"
        )
    path = os.path.normpath(path)
    # POSIX leaves a leading "//" to the implementation (normpath keeps it);
    # on Linux it is "/".
    return "/" + path.lstrip("/")


def _checkBool(instance: object, attribute: Attribute[bool], value: object) -> None:
    """
    Validate a L{bool} field of L{Cgroup}.
    """
    if not isinstance(value, bool):
        raise TypeError(f"Cgroup.{attribute.name} must be a bool, not {value!r}")


def _bytes(value: int | str | None, name: str) -> int | None:
    """
    A memory size: C{None} or C{"max"} for no limit, a byte count, or text
    such as C{"64M"} (C{K}, C{M}, C{G}, C{T}, C{P}: powers of 1024).
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text == "max":
            return None
        match = _SIZE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{name} must be a byte count, a size such as '64M', '512K' "
                f"or '1G' (powers of 1024), or 'max', not {value!r}"
            )
        size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    elif _isInt(value):
        size = int(value)
    else:
        raise TypeError(
            f"{name} must be a byte count (int), a size such as '64M', or "
            f"None, not {value!r}"
        )
    if not 0 <= size <= _BYTES_MAX:
        raise ValueError(
            f"{name} must be between 0 and {_BYTES_MAX} bytes, not {value!r}"
        )
    return size


def _memoryMax(value: int | str | None) -> int | None:
    return _bytes(value, "Cgroup.memoryMax")


def _memoryHigh(value: int | str | None) -> int | None:
    return _bytes(value, "Cgroup.memoryHigh")


def _pidsMax(value: int | str | None) -> int | None:
    """
    Validate L{Cgroup.pidsMax}: C{None} or C{"max"} for no limit, else 1
    to C{PID_MAX_LIMIT}.
    """
    name = "Cgroup.pidsMax"
    if value is None or value == "max":
        return None
    if not _isInt(value):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    assert isinstance(value, int)
    if not 1 <= value <= _PIDS_MAX:
        raise ValueError(f"{name} must be between 1 and {_PIDS_MAX}, not {value!r}")
    return int(value)


def _cpus(value: float, name: str) -> tuple[int, int]:
    """
    A number of CPUs as a C{(quota, period)} pair with the default period.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of CPUs, not {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of CPUs, not {value!r}")
    quota = round(value * CPU_PERIOD)
    if quota < _QUOTA_MIN:
        raise ValueError(
            f"{name} must be at least {_QUOTA_MIN / CPU_PERIOD} CPUs (a quota "
            f"of {_QUOTA_MIN} us per {CPU_PERIOD} us), not {value!r}"
        )
    if quota > _QUOTA_MAX:
        raise ValueError(
            f"{name} must be at most {_QUOTA_MAX // CPU_PERIOD} CPUs, not {value!r}"
        )
    return quota, CPU_PERIOD


def _cpuMax(
    value: Sequence[int | str | None] | float | None,
) -> tuple[int | None, int] | None:
    """
    Validate and normalise L{Cgroup.cpuMax}: C{None} (or C{"max"}) for no
    limit; a number of CPUs; or C{(quota, period)} in microseconds, the
    quota C{None} (or C{"max"}) for no quota.
    """
    name = "Cgroup.cpuMax"
    if value is None or value == "max":
        return None
    if _isInt(value) or isinstance(value, float):
        assert isinstance(value, (int, float))
        return _cpus(value, name)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(
            f"{name} must be a number of CPUs, a (quota, period) pair in "
            f"microseconds, or None, not {value!r}"
        )
    quota, period = value
    if not _isInt(period):
        raise TypeError(f"{name}: the period must be an int (us), not {period!r}")
    assert isinstance(period, int)
    if not _PERIOD_MIN <= period <= _PERIOD_MAX:
        raise ValueError(
            f"{name}: the period must be between {_PERIOD_MIN} and "
            f"{_PERIOD_MAX} us, not {period!r}"
        )
    if quota is None or quota == "max":
        return None, int(period)
    if not _isInt(quota):
        raise TypeError(
            f"{name}: the quota must be an int (us) or None for no quota, not {quota!r}"
        )
    assert isinstance(quota, int)
    if not _QUOTA_MIN <= quota <= _QUOTA_MAX:
        raise ValueError(
            f"{name}: the quota must be between {_QUOTA_MIN} and {_QUOTA_MAX} "
            f"us, not {quota!r}"
        )
    return int(quota), int(period)


def _ioWeight(value: int | None) -> int | None:
    """
    Validate L{Cgroup.ioWeight}.
    """
    name = "Cgroup.ioWeight"
    if value is None:
        return None
    if not _isInt(value):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    if not _WEIGHT_MIN <= value <= _WEIGHT_MAX:
        raise ValueError(
            f"{name} must be between {_WEIGHT_MIN} and {_WEIGHT_MAX}, not {value!r}"
        )
    return int(value)


@frozen
class Cgroup:
    """
    A cgroup v2 of its own for a child: a fresh leaf, created for the spawn
    under L{parent}, that the child is in from before its C{execve} (from
    its first instruction when the kernel can place it there at clone,
    C{CLONE_INTO_CGROUP}), with the limits below; read when the child ends
    (L{CgroupStats}), its remaining processes killed (L{killOnExit}), and
    removed once empty.

    Give it to C{spawnProcess}, L{txspawn.run} or L{txspawn.stream} as
    C{cgroup=}, or as L{txspawn.options.SpawnOptions.cgroup}.  A limit
    needs its controller in the parent's C{cgroup.controllers}: spawning
    with one the hierarchy does not offer raises
    L{txspawn.errors.UnsupportedFeature} naming it (whatever L{required}
    says: a limit is never dropped).

    @ivar parent: The absolute path of the cgroup v2 directory to create
        leaves in (normalised; it must be under the cgroup2 mount, and is
        checked when a child is spawned), or C{None} (the default) to find
        one: this process's own cgroup when it is delegated to us, else a
        C{txspawn} cgroup at the root of the hierarchy when we may create
        it (root).
    @ivar required: C{True} (the default): when no cgroup can be had, the
        spawn raises L{txspawn.errors.UnsupportedFeature} saying why and
        how to get one.  C{False}: the child runs without one, and the
        reason is the transport's C{cgroupUnavailable} (and
        L{txspawn.ProcessResult.cgroupUnavailable}).
    @ivar memoryMax: C{memory.max}, in bytes: an int, or text such as
        C{"64M"}, C{"512K"} or C{"1G"} (powers of 1024); C{None} (or
        C{"max"}) for no limit.  Over it the kernel reclaims, then kills
        (L{CgroupStats.oomKilled}).
    @ivar memoryHigh: C{memory.high} (throttling, no kill), in the same
        forms.
    @ivar pidsMax: C{pids.max}: the most tasks (processes and threads) in
        the cgroup at once, C{1} or more; past it C{fork} and C{clone}
        fail with C{EAGAIN}.  C{None} for no limit.
    @ivar cpuMax: C{cpu.max} as C{(quota, period)} in microseconds: at
        most C{quota} of CPU time every C{period} (C{1000} to C{1000000});
        the quota at least C{1000}, or C{None} for no quota.  Given as a
        number of CPUs (C{0.5}, C{2}), it is C{(round(cpus * 100000),
        100000)}.  C{None} for no limit.
    @ivar ioWeight: C{io.weight} (C{"default N"}), C{1} to C{10000}, or
        C{None} to leave the kernel's default (100).
    @ivar killOnExit: C{True} (the default): when the child is reaped,
        whatever it left running in its cgroup is killed at once
        (C{cgroup.kill}).  C{False} lets it run on; the cgroup is removed
        once it is empty.

    @since: txspawn 0.1
    """

    parent: str | None = field(default=None, converter=_checkParent)
    required: bool = field(default=True, validator=_checkBool)
    memoryMax: int | None = field(default=None, converter=_memoryMax)
    memoryHigh: int | None = field(default=None, converter=_memoryHigh)
    pidsMax: int | None = field(default=None, converter=_pidsMax)
    cpuMax: tuple[int | None, int] | None = field(default=None, converter=_cpuMax)
    ioWeight: int | None = field(default=None, converter=_ioWeight)
    killOnExit: bool = field(default=True, validator=_checkBool)

    def controllersNeeded(self) -> frozenset[str]:
        """
        The controllers the limits need enabled for the leaf: C{"memory"}
        (L{memoryMax}, L{memoryHigh}), C{"pids"}, C{"cpu"}, C{"io"}; empty
        without limits (placement, C{cgroup.kill}, C{cgroup.events} and
        C{cpu.stat} need none).
        """
        needed = []
        if self.memoryMax is not None or self.memoryHigh is not None:
            needed.append("memory")
        if self.pidsMax is not None:
            needed.append("pids")
        if self.cpuMax is not None:
            needed.append("cpu")
        if self.ioWeight is not None:
            needed.append("io")
        return frozenset(needed)


def checkCgroup(value: Cgroup | None, name: str) -> Cgroup | None:
    """
    Validate L{txspawn.options.SpawnOptions.cgroup}, naming the option
    C{name} (a L{Cgroup} checks itself when it is built).
    """
    if value is not None and not isinstance(value, Cgroup):
        raise TypeError(
            f"{name} must be a txspawn.options.Cgroup or None, not {value!r}"
        )
    return value


def _copyIO(
    value: Mapping[str, Mapping[str, int]] | None,
) -> dict[str, dict[str, int]] | None:
    """
    A copy of C{io.stat}, so that the stats do not change with a mapping
    the reader keeps.
    """
    if value is None:
        return None
    return {device: dict(counters) for device, counters in value.items()}


@frozen
class CgroupStats:
    """
    What a child's cgroup said when the child ended: on its exit reason (as
    C{reason.cgroup}), on the transport (C{cgroupStats}), on
    L{txspawn.ProcessResult.cgroup}, and given to
    L{txspawn.interfaces.IProcessTreeObserver.processTreeEnded} (read again
    once every process of the cgroup has exited).

    The statistics cover every process that was in the cgroup: the child
    and all its descendants, waited for or not.  The counters of a
    controller not enabled for the leaf are C{None}.

    @ivar path: The leaf's path (by the time this is usually read, it has
        been removed).
    @ivar placement: How the child was placed in it: C{"clone"} (by the
        kernel, at clone: C{CLONE_INTO_CGROUP}) or C{"procs"} (the child
        wrote itself into C{cgroup.procs} before C{execve}).
    @ivar placementNote: Why the placement is not C{"clone"}, else C{None}.
    @ivar cpuUsageUsec: C{cpu.stat} C{usage_usec}: CPU time, in
        microseconds (always there).
    @ivar cpuUserUsec: C{cpu.stat} C{user_usec}.
    @ivar cpuSystemUsec: C{cpu.stat} C{system_usec}.
    @ivar cpuThrottledCount: C{cpu.stat} C{nr_throttled}: how many periods
        the cgroup was throttled in (the C{cpu} controller).
    @ivar cpuThrottledUsec: C{cpu.stat} C{throttled_usec}.
    @ivar memoryPeak: C{memory.peak}: the most memory the cgroup used, in
        bytes (the C{memory} controller).  This is the child's own peak,
        which C{ru_maxrss} cannot tell.
    @ivar oomKills: C{memory.events} C{oom_kill}: how many processes the
        kernel killed for going over C{memory.max}.
    @ivar pidsPeak: C{pids.peak}: the most tasks at once (the C{pids}
        controller; C{None} too on kernels without the file, before 6.1).
    @ivar io: C{io.stat}: by device (C{"major:minor"}), its counters
        (C{"rbytes"}, C{"wbytes"}, C{"rios"}, C{"wios"}, ...) (the C{io}
        controller).  Not part of the hash.

    @since: txspawn 0.1
    """

    path: str
    placement: str
    placementNote: str | None
    cpuUsageUsec: int
    cpuUserUsec: int
    cpuSystemUsec: int
    cpuThrottledCount: int | None
    cpuThrottledUsec: int | None
    memoryPeak: int | None
    oomKills: int | None
    pidsPeak: int | None
    io: Mapping[str, Mapping[str, int]] | None = field(converter=_copyIO, hash=False)

    @property
    def oomKilled(self) -> bool:
        """
        Whether the kernel killed a process of the cgroup for going over
        its memory limit: what tells an OOM kill from any other
        C{SIGKILL}.
        """
        return self.oomKills is not None and self.oomKills > 0
