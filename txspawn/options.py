# -*- test-case-name: tests.test_options -*-
"""
Public value types for the spawn options that Twisted's C{spawnProcess} does
not have: L{SpawnOptions}; the namespaces a child is created in,
L{Namespaces} with its maps' L{IdMapRange}; and the cgroup it is placed in,
L{Cgroup}, with what is read from it when the child ends, L{CgroupStats}
(each defined in a private module of its own, and public here).

A L{SpawnOptions} is validated when it is built, so a mistake is reported
where it is made, with the option's name, and never half-way through a
spawn.  Names (of groups, of resources) are accepted for convenience; group
names are resolved when the spawn is planned (see L{SpawnOptions.groupIDs}).

@since: txspawn 0.1
"""

from __future__ import annotations

import grp
import resource
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

from attrs import field, frozen

from txspawn._cgroupoptions import Cgroup, CgroupStats, checkCgroup
from txspawn._namespaceoptions import IdMapRange, Namespaces, checkNamespaces

__all__ = [
    "ID_MAX",
    "NGROUPS_MAX",
    "Cgroup",
    "CgroupStats",
    "IdMapRange",
    "Namespaces",
    "SpawnOptions",
]

#: The largest valid uid or gid: C{(uid_t)-1} is reserved to mean "no
#: change" by C{setresuid(2)}.
ID_MAX = 0xFFFFFFFE

#: Linux's C{NGROUPS_MAX}: the most supplementary groups a process can have.
NGROUPS_MAX = 65536

#: The largest C{pid_t}, so the largest pgid C{setpgid(2)} can be given:
#: beyond it the engines would truncate the number (to C{0} for C{2**32},
#: which means "lead a new group") rather than refuse it.
_PID_MAX = 2**31 - 1

# Every resource this Python knows, by number and by name; the values of the
# RLIMIT_* constants differ between architectures, so never hard-code them.
_RESOURCES: dict[str, int] = {
    name: getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_")
}
_RESOURCE_NAMES: dict[int, str] = {}
for _name in sorted(_RESOURCES):
    # Aliases (RLIMIT_OFILE is RLIMIT_NOFILE) sort after the usual name.
    _RESOURCE_NAMES.setdefault(_RESOURCES[_name], _name)
del _name

#: One entry of L{SpawnOptions.groups} as given: a gid or a group name.
GroupSpec = Union[int, str]


def _isInt(value: object) -> bool:
    """
    Whether C{value} is an L{int} but not a L{bool}.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def _checkUmask(value: int | None, name: str = "SpawnOptions.umask") -> int | None:
    """
    Validate L{SpawnOptions.umask}.

    Every check of this module takes the option's C{name} for its messages:
    C{SpawnOptions.umask} here, the keyword alone when the option was given
    to C{spawnProcess}, L{txspawn.run} or L{txspawn.stream} (see
    L{_fromKeywords}).
    """
    if value is None:
        return None
    if not _isInt(value):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    if not 0 <= value <= 0o777:
        raise ValueError(f"{name} must be between 0 and 0o777, not {value!r}")
    return int(value)


def _checkGroups(
    value: Iterable[GroupSpec] | None, name: str = "SpawnOptions.groups"
) -> tuple[GroupSpec, ...] | None:
    """
    Validate L{SpawnOptions.groups} (names are resolved later, by
    L{SpawnOptions.groupIDs}).
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a sequence of gids or group names, not {value!r}"
        )
    groups = tuple(value)
    for index, group in enumerate(groups):
        if isinstance(group, str):
            if not group or "\0" in group:
                raise ValueError(
                    f"{name}[{index}] is not a valid group name: {group!r}"
                )
        elif _isInt(group):
            if not 0 <= group <= ID_MAX:
                raise ValueError(
                    f"{name}[{index}] must be a gid between 0 and "
                    f"{ID_MAX}, not {group!r}"
                )
        else:
            raise TypeError(
                f"{name}[{index}] must be a gid (int) or a group "
                f"name (str), not {group!r}"
            )
    if len(groups) > NGROUPS_MAX:
        raise ValueError(
            f"{name} has {len(groups)} entries; at most {NGROUPS_MAX} are allowed"
        )
    return groups


def _checkNewSession(value: bool, name: str = "SpawnOptions.newSession") -> bool:
    """
    Validate L{SpawnOptions.newSession}.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def _checkProcessGroup(
    value: int | None, name: str = "SpawnOptions.processGroup"
) -> int | None:
    """
    Validate L{SpawnOptions.processGroup}.
    """
    if value is None:
        return None
    if not _isInt(value):
        raise TypeError(f"{name} must be None, 0 or a pgid, not {value!r}")
    if not 0 <= value <= _PID_MAX:
        raise ValueError(
            f"{name} must be None, 0 (lead a new group) or the pgid of a group "
            f"to join (1 to {_PID_MAX}), not {value!r}"
        )
    return int(value)


def _limitValue(value: object, what: str) -> int:
    """
    Normalise one soft or hard limit: C{RLIM_INFINITY} (C{-1} in Python on
    Linux, or the C value C{2**64 - 1}) becomes C{resource.RLIM_INFINITY}.
    """
    if not _isInt(value):
        raise TypeError(f"{what} must be an int, not {value!r}")
    assert isinstance(value, int)
    if value in (resource.RLIM_INFINITY, 2**64 - 1):
        return resource.RLIM_INFINITY
    if not 0 <= value < 2**64 - 1:
        raise ValueError(
            f"{what} must be between 0 and 2**64 - 2 or RLIM_INFINITY, not {value!r}"
        )
    return value


def _limitKey(value: int) -> int:
    """
    Order limits with C{RLIM_INFINITY} above every finite value.
    """
    return 2**64 if value == resource.RLIM_INFINITY else value


def _checkRlimits(
    value: Mapping[Any, Sequence[int]] | Iterable[tuple[int, int, int]],
    name: str = "SpawnOptions.rlimits",
) -> tuple[tuple[int, int, int], ...]:
    """
    Validate and normalise L{SpawnOptions.rlimits} to sorted C{(resource,
    soft, hard)} triples.
    """
    if isinstance(value, Mapping):
        items = [(key, limits) for key, limits in value.items()]
    elif isinstance(value, tuple) and all(
        isinstance(entry, tuple) and len(entry) == 3 for entry in value
    ):
        # The normalised form, as attrs.evolve() passes it back.
        items = [(entry[0], entry[1:]) for entry in value]
    else:
        raise TypeError(
            f"{name} must be a mapping of resource.RLIMIT_* -> (soft, hard), "
            f"not {value!r}"
        )
    result: dict[int, tuple[int, int, int]] = {}
    for key, limits in items:
        if isinstance(key, str):
            resourceName = key if key.startswith("RLIMIT_") else "RLIMIT_" + key
            if resourceName not in _RESOURCES:
                raise ValueError(f"{name}: unknown resource {key!r}")
            number = _RESOURCES[resourceName]
        elif _isInt(key):
            if key not in _RESOURCE_NAMES:
                raise ValueError(f"{name}: unknown resource {key!r}")
            number = int(key)
        else:
            raise TypeError(
                f"{name} keys must be resource.RLIMIT_* values, not {key!r}"
            )
        what = f"{name}[{_RESOURCE_NAMES[number]}]"
        if not isinstance(limits, (tuple, list)) or len(limits) != 2:
            raise TypeError(f"{what} must be a (soft, hard) pair, not {limits!r}")
        soft = _limitValue(limits[0], f"{what} soft limit")
        hard = _limitValue(limits[1], f"{what} hard limit")
        if _limitKey(soft) > _limitKey(hard):
            raise ValueError(
                f"{what}: the soft limit {soft!r} exceeds the hard limit {hard!r}"
            )
        if number in result:
            raise ValueError(f"{what} is given twice")
        result[number] = (number, soft, hard)
    return tuple(result[number] for number in sorted(result))


def _checkDeathSignal(
    value: int | None, name: str = "SpawnOptions.deathSignal"
) -> int | None:
    """
    Validate L{SpawnOptions.deathSignal}.
    """
    if value is None:
        return None
    if not _isInt(value):
        raise TypeError(f"{name} must be a signal number or None, not {value!r}")
    if value not in signal.valid_signals() or value == 0:
        raise ValueError(f"{name} must be a valid signal number, not {value!r}")
    return int(value)


def _checkNamespaces(
    value: Namespaces | None, name: str = "SpawnOptions.namespaces"
) -> Namespaces | None:
    """
    Validate L{SpawnOptions.namespaces} (a L{Namespaces} checks itself when
    it is built).
    """
    return checkNamespaces(value, name)


def _checkCgroup(
    value: Cgroup | None, name: str = "SpawnOptions.cgroup"
) -> Cgroup | None:
    """
    Validate L{SpawnOptions.cgroup} (a L{Cgroup} checks itself when it is
    built).
    """
    return checkCgroup(value, name)


def _checkCombination(
    newSession: bool,
    processGroup: int | None,
    groups: tuple[GroupSpec, ...] | None,
    namespaces: Namespaces | None,
    prefix: str,
) -> None:
    """
    Check the options that constrain each other.

    @param prefix: What comes before each option's name in the message
        (C{"SpawnOptions."}, or nothing for keyword arguments).
    """
    if newSession and processGroup is not None:
        raise ValueError(
            f"{prefix}newSession and {prefix}processGroup cannot be combined: "
            "a new session already leads a new process group"
        )
    if (
        groups is not None
        and namespaces is not None
        and namespaces.user
        and namespaces.setgroups == "deny"
    ):
        raise ValueError(
            f"{prefix}groups cannot be set in a user namespace with "
            f"setgroups='deny' ({prefix}namespaces): give Namespaces("
            "setgroups='allow') and a gidMap mapping the groups"
        )


@frozen
class SpawnOptions:
    """
    Options for a child beyond Twisted's C{spawnProcess} arguments.

    Every option defaults to "as Twisted does": inherit from the parent.
    Each engine either honours every option or raises
    L{txspawn.errors.UnsupportedFeature} naming it; none is ever ignored.

    @ivar umask: The child's umask (C{0} to C{0o777}), or C{None} to
        inherit the parent's.
    @ivar groups: Supplementary groups for the child: gids or group names
        (resolved with L{grp} when the spawn is planned).  C{None} (the
        default) inherits the parent's groups, I{except} when a C{uid} is
        given to C{spawnProcess}: then the child gets no supplementary
        groups at all, so that it cannot keep privileged groups of a root
        parent.  Giving C{groups} without a C{uid} is fine.
    @ivar newSession: Start a new session (C{setsid()}) in the child.  A
        pty child always gets a new session.
    @ivar processGroup: C{None} to stay in the parent's process group, C{0}
        to make the child the leader of a new group (its pgid is its pid),
        or the pgid of an existing group to join (up to C{2**31 - 1}, the
        largest C{pid_t}).  Cannot be combined with C{newSession}, which
        already makes the child a group leader.
    @ivar rlimits: Resource limits, given as a mapping of
        C{resource.RLIMIT_*} (or its name, C{"NOFILE"} or
        C{"RLIMIT_NOFILE"}) to C{(soft, hard)}; either may be
        C{resource.RLIM_INFINITY}, and C{soft <= hard}.  Stored as sorted
        C{(resource, soft, hard)} triples with C{RLIM_INFINITY} as
        C{resource.RLIM_INFINITY}.
    @ivar deathSignal: A signal the kernel sends the child when the thread
        that spawned it exits (C{PR_SET_PDEATHSIG}), or C{None}.
    @ivar namespaces: The new namespaces to create the child in
        (L{Namespaces}), or C{None}.  With a user namespace, the C{uid},
        C{gid} and C{groups} of the spawn are ids inside it; C{groups} then
        needs C{setgroups="allow"}.
    @ivar cgroup: The cgroup v2 the child gets, a fresh one of its own
        (L{Cgroup}: where, which limits, whether it is required), or
        C{None} to leave the child in this process's cgroup.

    @since: txspawn 0.1
    """

    umask: int | None = field(default=None, converter=_checkUmask)
    groups: tuple[GroupSpec, ...] | None = field(default=None, converter=_checkGroups)
    newSession: bool = field(default=False, converter=_checkNewSession)
    processGroup: int | None = field(default=None, converter=_checkProcessGroup)
    rlimits: tuple[tuple[int, int, int], ...] = field(
        default=(), converter=_checkRlimits
    )
    deathSignal: int | None = field(default=None, converter=_checkDeathSignal)
    namespaces: Namespaces | None = field(default=None, converter=_checkNamespaces)
    cgroup: Cgroup | None = field(default=None, converter=_checkCgroup)

    def __attrs_post_init__(self) -> None:
        """
        Check the options that constrain each other.
        """
        _checkCombination(
            self.newSession,
            self.processGroup,
            self.groups,
            self.namespaces,
            "SpawnOptions.",
        )

    def groupIDs(
        self, getgrnam: Callable[[str], grp.struct_group] = grp.getgrnam
    ) -> tuple[int, ...] | None:
        """
        Resolve L{groups} to gids.

        @param getgrnam: Looks a group name up (injectable for tests).
        @return: The gids in the order given, or C{None} if L{groups} is.
        @raise ValueError: if a group name is unknown.

        @since: txspawn 0.1
        """
        if self.groups is None:
            return None
        return _resolveGroups(self.groups, "SpawnOptions.groups", getgrnam)


def _resolveGroups(
    groups: Sequence[GroupSpec],
    name: str,
    getgrnam: Callable[[str], grp.struct_group] = grp.getgrnam,
) -> tuple[int, ...]:
    """
    Resolve checked groups to gids: L{SpawnOptions.groupIDs}, with errors
    naming the option C{name} (the keyword alone when the planner resolves
    the groups given to an entry point).

    @raise ValueError: if a group name is unknown.
    """
    gids = []
    for index, group in enumerate(groups):
        if isinstance(group, str):
            try:
                gids.append(getgrnam(group).gr_gid)
            except KeyError:
                raise ValueError(f"{name}[{index}]: unknown group {group!r}") from None
        else:
            gids.append(group)
    return tuple(gids)


#: Each option's check, by the keyword that gives it to C{spawnProcess},
#: L{txspawn.run} or L{txspawn.stream}.
_CHECKS: dict[str, Callable[[Any, str], object]] = {
    "umask": _checkUmask,
    "groups": _checkGroups,
    "newSession": _checkNewSession,
    "processGroup": _checkProcessGroup,
    "rlimits": _checkRlimits,
    "deathSignal": _checkDeathSignal,
    "namespaces": _checkNamespaces,
    "cgroup": _checkCgroup,
}

#: The keyword arguments that are L{SpawnOptions} fields.
_OPTION_NAMES = frozenset(_CHECKS)


def _fromKeywords(options: Mapping[str, object]) -> SpawnOptions:
    """
    The L{SpawnOptions} given as keyword arguments to an entry point
    (C{spawnProcess(..., umask=0o22)}), with errors naming each option as the
    caller spelled it (C{umask}, not C{SpawnOptions.umask}).

    @param options: Keyword arguments, every one of them in L{_OPTION_NAMES}.
    @raise TypeError: for a value of the wrong type.
    @raise ValueError: for a bad value or a bad combination.
    """
    values: dict[str, Any] = {
        name: _CHECKS[name](value, name) for name, value in options.items()
    }
    _checkCombination(
        values.get("newSession", False),
        values.get("processGroup"),
        values.get("groups"),
        values.get("namespaces"),
        "",
    )
    # The checks are idempotent: SpawnOptions runs them again, on values
    # that pass.
    return SpawnOptions(**values)
