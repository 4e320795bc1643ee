#!/bin/sh
# The tutorial's session (docs/howto/supervise.rst): a supervisor run by
# twistd as a daemon on procs.toml (listings/sv_procs.toml), driven with
# ctl, reloaded, and stopped.  Run in procs.toml's directory with WEB_PORT
# set; tests/test_howto_listings_supervise.py runs it.
set -eu

# [start]
twistd --pidfile=supervisor.pid --logfile=supervisor.log \
    txspawn-supervise -c procs.toml
# [end start]

# [status]
python -m txspawn ctl start poller    # answers once web, then poller, is RUNNING
python -m txspawn ctl status
# [end status]

# [control]
python -m txspawn ctl tail -n 2 poller
python -m txspawn ctl restart worker
python -m txspawn ctl stop worker
python -m txspawn ctl signal STOP poller    # paused...
python -m txspawn ctl signal CONT poller    # ...and resumed
python -m txspawn ctl events
# [end control]

# [reload]
cat >>procs.toml <<'TOML'

[programs.clock]
command = "sh -c 'while date; do sleep 1; done'"
TOML
python -m txspawn ctl reload    # starts clock; the others keep their pids
python -m txspawn ctl status
# [end reload]

# [shutdown]
pid=$(cat supervisor.pid)
kill "$pid"
# twistd exits once every program's process tree is gone.
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
# [end shutdown]
