"""
A twistd application with a supervisor in it, beside whatever else it
runs: twistd --reactor=txspawn -ny app.tac, in procs.toml's directory.
tests/test_howto_listings_supervise.py runs it.
"""

# [tac]
from twisted.application.service import Application
from twisted.internet import reactor

from txspawn.supervise import SupervisorService, loadConfig
from txspawn.supervise.tap import ControlService

config = loadConfig("procs.toml")
supervisor = SupervisorService(config, reactor, configPath="procs.toml")
# The control API, for python -m txspawn ctl (optional).
ControlService(supervisor, config.control, reactor).setServiceParent(supervisor)

application = Application("myapp")
supervisor.setServiceParent(application)
