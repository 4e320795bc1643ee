# -*- test-case-name: tests.test_cli -*-
"""
The command line, C{python -m txspawn}.

What it owns: L{txspawn._cli.main}, the C{info} and C{bench} commands.  It
is a client of the package like any other program: it may import
every layer and the public face, and nothing imports it but
L{txspawn.__main__}.
"""
