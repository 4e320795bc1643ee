# -*- test-case-name: tests.test_supervise_reload -*-
"""
What a reload changes: two configs compared program by program, by
L{ProgramConfig} equality.  A program whose definition is equal in both is
unchanged, and keeps running untouched (the same process objects, the same
pids); only the others are stopped, replaced or started.

@since: txspawn 0.1
"""

from __future__ import annotations

from attrs import frozen

from txspawn.supervise.config import SupervisorConfig

__all__ = ["ReloadResult", "diffConfigs"]


@frozen
class ReloadResult:
    """
    The programs a reload (or a comparison of two configs) found, by name,
    each in the order of the config it is in (the new one, except for
    L{removed}).

    @ivar added: In the new config only: added (and started if
        C{autostart} and the supervisor runs).
    @ivar removed: In the old config only: stopped and dropped.
    @ivar changed: In both, defined differently: stopped, replaced and
        started again.
    @ivar unchanged: In both, defined the same: untouched.

    @since: txspawn 0.1
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def toJSON(self) -> dict[str, object]:
        """
        The result as plain JSON types (what C{POST /v1/reload} answers).
        """
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
        }


def diffConfigs(old: SupervisorConfig, new: SupervisorConfig) -> ReloadResult:
    """
    Compare two configs, program by program.

    @param old: The config in force.
    @param new: The config to move to.
    """
    added: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    for name, program in new.programs.items():
        if name not in old.programs:
            added.append(name)
        elif old.programs[name] == program:
            unchanged.append(name)
        else:
            changed.append(name)
    removed = [name for name in old.programs if name not in new.programs]
    return ReloadResult(
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        unchanged=tuple(unchanged),
    )
