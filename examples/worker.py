"""
The example's crashing worker: it works for a second, then fails (exit
status 1), so the supervisor restarts it, with backoff.
"""

import sys
import time

print("worker: working", flush=True)
time.sleep(1.0)
print("worker: failed, exiting 1", file=sys.stderr, flush=True)
sys.exit(1)
