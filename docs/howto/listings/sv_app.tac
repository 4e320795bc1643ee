"""
A twistd application with a supervisor in it, beside whatever else it
runs: twistd --reactor=txspawn -ny app.tac, in procs.toml's directory.
tests/test_howto_listings_supervise.py runs it.
"""

# [tac]
from twisted.application.service import Application

from txspawn.supervise import SupervisorService, loadConfig

application = Application("myapp")
supervisor = SupervisorService(loadConfig("procs.toml"), configPath="procs.toml")
supervisor.setServiceParent(application)
