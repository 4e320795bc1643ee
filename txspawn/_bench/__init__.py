# -*- test-case-name: tests.test_bench -*-
"""
The side-by-side benchmark behind C{python -m txspawn bench}.

It ships inside the package (rather than only in the source tree's
C{benchmarks/}) so that the command works after a plain C{pip install .}:
the C reference loop travels as source (C{reference.c}, package data) and is
compiled with C{cc -O2} into a temporary directory when the benchmark runs.

  - L{txspawn._bench._model}: the value types (parameters, setups, tasks,
    scenarios, paired ratios).
  - L{txspawn._bench._scenarios}: what is measured (the registry of
    scenarios with their quick and full parameters).
  - L{txspawn._bench._namespaces}: the namespace suite (against a plain
    spawn and util-linux C{unshare}).
  - L{txspawn._bench._cgroups}: the cgroup suite (a spawn with a leaf of
    its own against a plain spawn, on each engine), and the parent cgroup
    made for its run.
  - L{txspawn._bench._supervise}: the supervisor row (txspawn supervise
    against Twisted's procmon and supervisord: restart latency, idle CPU,
    status latency, a program that cannot be executed, logs), with its
    value types (C{_supervise_model}), phases (C{_supervise_phases}), the
    anchors' configs and processes (C{_supervise_anchors}), the measured
    C program (C{_supervise_child}), the readers of what it recorded
    (C{_supervise_measure}), the worker running each supervisor
    (C{_supervise_worker}) and the table (C{_supervise_report}).
  - L{txspawn._bench._pyworker}: the worker process for the two Twisted
    columns (stock Twisted and txspawn), one reactor per process.
  - L{txspawn._bench._creference}: compiling and locating the C reference.
  - L{txspawn._bench._driver}: starting workers and interleaving batches.
  - L{txspawn._bench._report}: medians, ratios, the table and the JSON.
  - L{txspawn._bench._pairs}: the paired ratios and differences between
    rows of a suite.

Nothing here is public API.
"""

from __future__ import annotations

__all__: list[str] = []
