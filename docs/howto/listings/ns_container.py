"""
A container-like child: its own hostname, its own pid 1 (txspawn's init,
with the command as pid 2) and a /proc that shows only its own processes.
"""

from __future__ import annotations

import sys

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn
from txspawn.options import Namespaces

CONTAINER = Namespaces(
    user=True,
    pid=True,  # pid 1 is txspawn's init (pidInit=True, the default)
    mount=True,
    mountProc=True,  # a /proc of the new pid namespace
    uts=True,
    hostname="sandbox",
    ipc=True,
)

# A ps-like listing of /proc, with one background process to list too.  When
# the command exits, init exits with its status, and the kernel kills
# whatever is left in the namespace (here: the sleep).
PS = """
import os, socket, subprocess
subprocess.Popen(["sleep", "60"])
print("hostname:", socket.gethostname())
print(f"{'PID':>5} {'PPID':>5} COMMAND")
for pid in sorted(int(name) for name in os.listdir("/proc") if name.isdigit()):
    with open(f"/proc/{pid}/stat") as f:
        comm, fields = f.read().split(" (", 1)[1].rsplit(") ", 1)
    print(f"{pid:>5} {fields.split()[1]:>5} {comm}")
"""


async def example(reactor: object) -> list[tuple[int, int, str]]:
    result = await txspawn.run(
        [sys.executable, "-c", PS], reactor=reactor, namespaces=CONTAINER, check=True
    )
    text = result.stdout.decode()
    print(text, end="")
    table = [line.split(None, 2) for line in text.splitlines()[2:]]
    return [(int(pid), int(ppid), command) for pid, ppid, command in table]


def main(reactor: object) -> Deferred[list[tuple[int, int, str]]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
