# -*- test-case-name: tests.test_features -*-
"""
What this kernel and libc offer, as txspawn sees it: the features by name,
and the verdict on each.

txspawn picks its mechanisms (pidfd monitor or SIGCHLD, C{clone3} or
C{vfork}, C{close_range} or a loop, C{posix_spawn} file actions) from a
L{Features}, and C{python -m txspawn info} prints it.  Every feature that is
off records I{why} (the errno, the missing symbol, the minimum kernel or
libc version), so a fallback is never silent.  The probes that find the
verdicts, and the process-wide cache of them
(L{txspawn._kernel.probes.probeFeatures}), are in L{txspawn._kernel.probes}.

L{FEATURE_USES} says, in a user's words, what each feature gives txspawn
and what txspawn does without it.

Tests never patch the probes: they build a L{Features} with
L{Features.override} (or the constructor) and inject it into the spawner or
monitor under test.  The C engine records the verdicts only it can probe
with L{Features.override} too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from attrs import field, frozen

__all__ = [
    "CLONE3",
    "CLONE_CLEAR_SIGHAND",
    "CLONE_INTO_CGROUP",
    "CLONE_PIDFD",
    "CLOSE_RANGE",
    "CLOSE_RANGE_CLOEXEC",
    "FEATURE_NAMES",
    "FEATURE_USES",
    "OPENPTY",
    "PIDFD_OPEN",
    "PIDFD_SEND_SIGNAL",
    "SPAWN_ADDCHDIR",
    "SPAWN_ADDCLOSEFROM",
    "WAITID_PIDFD",
    "FeatureState",
    "Features",
]

#: C{pidfd_open(2)}: Linux 5.3.
PIDFD_OPEN = "pidfd_open"
#: C{waitid(P_PIDFD, ...)}: Linux 5.4.
WAITID_PIDFD = "waitid_pidfd"
#: C{pidfd_send_signal(2)}: Linux 5.1.
PIDFD_SEND_SIGNAL = "pidfd_send_signal"
#: C{clone3(2)}: Linux 5.3.
CLONE3 = "clone3"
#: C{CLONE_PIDFD}: Linux 5.2 (with C{clone}; C{clone3} has it from 5.3).
CLONE_PIDFD = "clone_pidfd"
#: C{CLONE_INTO_CGROUP} for C{clone3}: Linux 5.7.
CLONE_INTO_CGROUP = "clone_into_cgroup"
#: C{CLONE_CLEAR_SIGHAND} for C{clone3}: Linux 5.5.
CLONE_CLEAR_SIGHAND = "clone_clear_sighand"
#: C{close_range(2)} with C{CLOSE_RANGE_UNSHARE}: Linux 5.9.
CLOSE_RANGE = "close_range"
#: C{close_range(2)} with C{CLOSE_RANGE_CLOEXEC}: Linux 5.11.
CLOSE_RANGE_CLOEXEC = "close_range_cloexec"
#: glibc C{posix_spawn_file_actions_addclosefrom_np}: glibc 2.34.
SPAWN_ADDCLOSEFROM = "posix_spawn_file_actions_addclosefrom_np"
#: glibc C{posix_spawn_file_actions_addchdir_np}: glibc 2.29.
SPAWN_ADDCHDIR = "posix_spawn_file_actions_addchdir_np"
#: C{openpty(3)} (C{/dev/ptmx} and devpts usable).
OPENPTY = "openpty"

#: Every feature name, in the order C{describe} lists them.
FEATURE_NAMES: tuple[str, ...] = (
    PIDFD_OPEN,
    WAITID_PIDFD,
    PIDFD_SEND_SIGNAL,
    CLONE3,
    CLONE_PIDFD,
    CLONE_CLEAR_SIGHAND,
    CLONE_INTO_CGROUP,
    CLOSE_RANGE,
    CLOSE_RANGE_CLOEXEC,
    SPAWN_ADDCLOSEFROM,
    SPAWN_ADDCHDIR,
    OPENPTY,
)

#: What each feature gives txspawn, and what txspawn does without it, in a
#: user's words: C{python -m txspawn info} prints it under every feature
#: that is off.
FEATURE_USES: Mapping[str, str] = {
    PIDFD_OPEN: (
        "it would let txspawn watch each child through a file descriptor of "
        "its own (the pidfd monitor): no SIGCHLD handler, so spawning works "
        "from any thread and beside other code that handles SIGCHLD; without "
        "it the SIGCHLD monitor is used"
    ),
    WAITID_PIDFD: (
        "txspawn does not need it: it waits for each child by pid, which is "
        "safe while the child is unreaped"
    ),
    PIDFD_SEND_SIGNAL: (
        "it would let txspawn signal a child through its pidfd; without it "
        "txspawn uses kill(pid), which is safe because it never signals a "
        "child it has reaped"
    ),
    CLONE3: (
        "it would give the C engine its preferred way to start a child; "
        "without it the C engine uses glibc's clone() with the same flags, "
        "which is about as fast"
    ),
    CLONE_PIDFD: (
        "it would hand txspawn the child's pidfd as the child is created; "
        "without it txspawn asks for one just after (one more syscall, "
        "equally safe)"
    ),
    CLONE_CLEAR_SIGHAND: (
        "it would have the kernel reset the child's signal handlers as the "
        "child is created; without it the child resets them itself, with "
        "every signal blocked until it has"
    ),
    CLONE_INTO_CGROUP: (
        "it would let a child spawned with cgroup= start inside its own "
        "cgroup from its first instruction; without it the child moves "
        "itself in (cgroup.procs) before anything else"
    ),
    CLOSE_RANGE: (
        "it would let a child close every fd it must not inherit with one "
        "syscall; without it the child lists /proc/self/fd, or closes fds "
        "one by one, which costs more the more fds the parent has open"
    ),
    CLOSE_RANGE_CLOEXEC: "txspawn does not need it",
    SPAWN_ADDCLOSEFROM: (
        "it would let the Python engine's posix_spawn close every fd the "
        "child must not inherit in one step; without it posix_spawn closes "
        "them one by one, and the Python engine forks when there are many"
    ),
    SPAWN_ADDCHDIR: (
        "txspawn does not use it yet: it would let the Python engine keep "
        "posix_spawn for path=, for which it forks today"
    ),
    OPENPTY: ("spawning with usePTY=True needs it; without it such spawns fail"),
}


@frozen
class FeatureState:
    """
    The verdict on one feature.

    @ivar enabled: Whether txspawn may use the feature.
    @ivar reason: Why it is off (or a note on how it was found to be on).
    @ivar cacheable: C{False} when the verdict came from a transient error
        and must be probed again next time.
    """

    enabled: bool
    reason: str
    cacheable: bool = True


def _stateDict(states: Mapping[str, FeatureState]) -> dict[str, FeatureState]:
    return dict(states)


@frozen
class Features:
    """
    The probed features of this system.

    @ivar states: Feature name to L{FeatureState}; every name of
        L{FEATURE_NAMES} is present when built by
        L{txspawn._kernel.probes.probeFeatures}.
    """

    states: Mapping[str, FeatureState] = field(converter=_stateDict)

    def _state(self, name: str) -> FeatureState:
        try:
            return self.states[name]
        except KeyError:
            raise KeyError(
                f"unknown txspawn feature {name!r}; known: {', '.join(self.states)}"
            ) from None

    def enabled(self, name: str) -> bool:
        """
        @param name: A feature name, such as L{PIDFD_OPEN}.
        @return: Whether the feature may be used.
        @raise KeyError: for an unknown name.
        """
        return self._state(name).enabled

    def reason(self, name: str) -> str:
        """
        @param name: A feature name.
        @return: Why the feature is off, or how it was found to be on.
        @raise KeyError: for an unknown name.
        """
        return self._state(name).reason

    def override(self, name: str, enabled: bool, reason: str) -> Features:
        """
        A copy of these features with one verdict replaced.

        Tests use this to force a fallback (for example a kernel without
        pidfd); the C engine uses it to record the verdicts only it can
        probe.

        @param name: The feature name (may be a new one).
        @param enabled: The new verdict.
        @param reason: Why.
        @return: A new L{Features}; this one is unchanged.
        """
        states = dict(self.states)
        states[name] = FeatureState(enabled, reason)
        return Features(states)

    def cacheable(self) -> bool:
        """
        @return: Whether every verdict is final (none came from a transient
            error).
        """
        return all(state.cacheable for state in self.states.values())

    def describe(self) -> list[tuple[str, str, str]]:
        """
        Rows for C{python -m txspawn info}.

        @return: C{(name, "on" | "off", reason)} per feature, in
            L{FEATURE_NAMES} order, then any other name.
        """
        order = [n for n in FEATURE_NAMES if n in self.states]
        order += sorted(n for n in self.states if n not in FEATURE_NAMES)
        return [
            (
                name,
                "on" if self.states[name].enabled else "off",
                self.states[name].reason,
            )
            for name in order
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self.states)
