# -*- test-case-name: tests.test_cli -*-
"""
The command line, C{python -m txspawn}.

What it owns: L{txspawn._cli.main} and the commands it dispatches to:
C{info}, C{bench} (L{txspawn._cli.bench}), C{supervise} (the supervisor
in the foreground, and C{--convert}: L{txspawn._cli.supervise}) and C{ctl}
(the supervisor's control client: L{txspawn._cli.ctl}).  It
is a client of the package like any other program: it may import
every layer and the public face, and nothing imports it but
L{txspawn.__main__}.
"""
