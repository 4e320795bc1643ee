"""
A sandboxed build step: the build runs as root of its own user namespace,
in its own mount and pid namespaces with a fresh /proc, and works in a
tmpfs that no other process can see and that vanishes with it.  The
artifact comes back on stdout.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

from twisted.internet import task
from twisted.internet.defer import Deferred

import txspawn
from txspawn.options import Namespaces

SANDBOX = Namespaces(
    user=True,  # root inside, our own uid outside: no privilege needed
    mount=True,  # mounts made inside never reach us (propagation "slave")
    pid=True,  # the build sees only its own processes...
    mountProc=True,  # ...in a /proc of its own
)

# The build step: a tmpfs as the work dir, a "compile" in it, the artifact
# on stdout.  "$1" is the work dir, created empty by the parent.
BUILD = """
set -e
mount -t tmpfs -o size=16m tmpfs "$1"
cd "$1"
echo 'print("hello from the sandbox")' > hello.py
"$2" -c 'import py_compile; py_compile.compile("hello.py", cfile="hello.pyc")'
echo "build: pid $$, uid $(id -u), pid 1: $(cat /proc/1/comm)" >&2
cat hello.pyc
"""


async def example(reactor: object) -> dict[str, object]:
    work = tempfile.mkdtemp(prefix="build-")
    try:
        result = await txspawn.run(
            ["sh", "-c", BUILD, "build", work, sys.executable],
            reactor=reactor,
            namespaces=SANDBOX,
            check=True,
        )
        print(result.stderr.decode().strip())
        digest = hashlib.sha256(result.stdout).hexdigest()[:16]
        print(f"artifact: {len(result.stdout)} bytes, sha256 {digest}...")
        # The tmpfs was mounted in the build's mount namespace only: here
        # the work dir was empty all along, and it is still empty.
        print("work dir seen from outside:", os.listdir(work))
        return {
            "artifact": result.stdout,
            "log": result.stderr.decode(),
            "leftovers": os.listdir(work),
        }
    finally:
        os.rmdir(work)


def main(reactor: object) -> Deferred[dict[str, object]]:
    return Deferred.fromCoroutine(example(reactor))


if __name__ == "__main__":
    from txspawn.reactor import install

    install()
    task.react(main)
