# -*- test-case-name: tests.test_supervise_convert -*-
"""
Tests for L{txspawn.supervise.convert}: supervisord configs become TOML
configs that L{parseConfig} loads with the same meaning, and what cannot be
converted is listed with its section and key.
"""

from __future__ import annotations

import shlex
import signal
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txspawn.supervise import ProgramConfig, SupervisorConfig, parseConfig
from txspawn.supervise.convert import convertSupervisord

__all__ = ["ConvertKeyTests", "GeneratedConvertTests", "RealConfigTests"]

#: Supervisor's own sample config, trimmed: the server sections and one
#: program with most keys at their documented defaults.
SAMPLE = """\
; Sample supervisor config file.
[unix_http_server]
file=/tmp/supervisor.sock   ; the path to the socket file
chmod=0700                 ; socket file mode (default 0700)

[supervisord]
logfile=/tmp/supervisord.log ; main log file; default $CWD/supervisord.log
logfile_maxbytes=50MB        ; max main logfile bytes b4 rotation; default 50MB
pidfile=/tmp/supervisord.pid ; supervisord pidfile; default supervisord.pid
nodaemon=false               ; start in foreground if true; default false
childlogdir=/var/log/supervisor

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///tmp/supervisor.sock ; use a unix:// URL  for a unix socket

[program:theprogramname]
command=/bin/cat              ; the program (relative uses PATH, can take args)
process_name=%(program_name)s ; process_name expr (default %(program_name)s)
numprocs=1                    ; number of processes copies to start (def 1)
directory=/tmp                ; directory to cwd to before exec (def no cwd)
umask=022                     ; umask for process (default None)
priority=999                  ; the relative start priority (default 999)
autostart=true                ; start at supervisord start (default: true)
startsecs=1                   ; # of secs prog must stay up to be running (def. 1)
startretries=3                ; max # of serial start failures when starting (default 3)
autorestart=unexpected        ; when to restart if exited after running
exitcodes=0                   ; 'expected' exit codes used with autorestart (default 0)
stopsignal=QUIT               ; signal used to kill process (default TERM)
stopwaitsecs=10               ; max num secs to wait b4 SIGKILL (default 10)
stopasgroup=false             ; send stop signal to the UNIX process group
killasgroup=false             ; SIGKILL the UNIX process group (def false)
user=chrism                   ; setuid to this UNIX account to run the program
redirect_stderr=true          ; redirect proc stderr to stdout (default false)
stdout_logfile=/a/path        ; stdout log path, NONE for none; default AUTO
stdout_logfile_maxbytes=1MB   ; max # logfile bytes b4 rotation (default 50MB)
stdout_logfile_backups=10     ; # of stdout logfile backups (0 means none, default 10)
environment=A="1",B="2"       ; process environment additions (def no adds)
"""

#: A web stack as people write them: a gunicorn app, celery workers,
#: nginx, with ENV_ expansions and %(here)s paths.
WEBSTACK = """\
[inet_http_server]
port = 127.0.0.1:9001
username = admin
password = secret

[supervisord]
childlogdir = %(here)s/log

[program:nginx]
command = /usr/sbin/nginx -g "daemon off;" -c %(here)s/nginx.conf
priority = 100
autorestart = true
stopsignal = QUIT
stdout_logfile = AUTO
stderr_logfile = %(here)s/log/nginx-error.log

[program:app]
command = %(ENV_VENV)s/bin/gunicorn --bind unix:%(here)s/app.sock app.wsgi:application
directory = %(here)s/src
environment = DJANGO_SETTINGS_MODULE="app.settings.production",LANG="en_US.UTF-8"
user = www-data
priority = 200
startsecs = 5
stopwaitsecs = 60
killasgroup = true
stopasgroup = true

[program:celery]
command = %(ENV_VENV)s/bin/celery -A app worker -n worker%(process_num)d@%%h
process_name = %(program_name)s_%(process_num)s
numprocs = 4
numprocs_start = 1
priority = 300
autorestart = unexpected
startretries = 0
stdout_logfile = %(here)s/log/%(program_name)s.log
stdout_logfile_maxbytes = 10485760
stdout_logfile_backups = 3

[group:web]
programs = nginx,app

[eventlistener:crashmail]
command = crashmail -a -m ops@example.com
events = PROCESS_STATE_EXITED
"""

#: A small config with no server sections at all and odd spacing.
MINIMAL = """\
[program:sleeper]
command =   sleep 1000
autostart=no
autorestart=false
"""


def converted(text: str, **environ: str) -> tuple[SupervisorConfig, list[str]]:
    """
    Convert C{text} and load the result.
    """
    toml, notes = convertSupervisord(text)
    return parseConfig(toml, baseDir="/etc/sv", environ=environ), notes


class RealConfigTests(SynchronousTestCase):
    """
    Real-looking supervisord configs convert to TOML that loads with their
    meaning.
    """

    def test_sample(self) -> None:
        """
        Supervisor's sample config: every program key converts; the server
        sections give the control socket and the log directory; the
        supervisord keys with no equivalent are listed.
        """
        config, notes = converted(SAMPLE)
        self.assertEqual(config.control, "unix:path=/tmp/supervisor.sock:mode=700")
        self.assertEqual(config.logDir, "/var/log/supervisor")
        program = config.programs["theprogramname"]
        self.assertEqual(program.command, ("/bin/cat",))
        self.assertEqual(
            (program.cwd, program.user, program.instances, program.autostart),
            ("/tmp", "chrism", 1, True),
        )
        self.assertEqual(program.spawnOptions.umask, 0o022)
        self.assertEqual(program.ready.after, 1.0)
        self.assertEqual(program.backoff.giveUpAfter, 4)
        self.assertEqual(program.restart, "on-failure")
        self.assertEqual(
            (program.stop.signal, program.stop.timeout, program.stop.kill),
            (signal.SIGQUIT, 10.0, "tree"),
        )
        self.assertEqual(
            (program.logs.stdout, program.logs.merge, program.logs.maxBytes),
            ("/a/path", True, 1024**2),
        )
        self.assertEqual(program.logs.backups, 10)
        self.assertEqual(dict(program.env), {"A": "1", "B": "2"})
        self.assertEqual(
            notes,
            [
                "[supervisord] logfile: not converted",
                "[supervisord] logfile_maxbytes: not converted",
                "[supervisord] pidfile: not converted",
                "[supervisord] nodaemon: not converted",
                "[program:theprogramname] priority: start order by priority: "
                "programs are written in priority order; use depends_on for an "
                "order that matters",
            ],
        )

    def test_webstack(self) -> None:
        """
        A web stack: C{%(here)s} paths become relative to the TOML file,
        C{%(ENV_X)s} becomes C{${X}}, C{%%} is C{%}, programs are written in
        priority order, and the process numbers, the server's password and
        the group and event listener sections are listed.
        """
        toml, notes = convertSupervisord(WEBSTACK)
        self.assertIn("${VENV}/bin/gunicorn", toml)
        config = parseConfig(toml, baseDir="/srv", environ={"VENV": "/venv"})
        self.assertEqual(list(config.programs), ["nginx", "app", "celery"])
        self.assertEqual(config.control, "tcp:9001:interface=127.0.0.1")
        self.assertEqual(config.logDir, "/srv/log")
        nginx, app, celery = config.programs.values()
        self.assertEqual(
            nginx.command,
            ("/usr/sbin/nginx", "-g", "daemon off;", "-c", "./nginx.conf"),
        )
        self.assertEqual((nginx.restart, nginx.stop.signal), ("always", signal.SIGQUIT))
        self.assertEqual(
            (nginx.logs.stdout, nginx.logs.stderr),
            ("/srv/log/nginx.out", "/srv/log/nginx-error.log"),
        )
        self.assertEqual(app.command[0], "/venv/bin/gunicorn")
        self.assertEqual(app.command[2], "unix:./app.sock")
        self.assertEqual((app.cwd, app.user), ("/srv/src", "www-data"))
        self.assertEqual(app.env["LANG"], "en_US.UTF-8")
        self.assertEqual(
            (app.ready.after, app.stop.timeout, app.stop.kill), (5.0, 60.0, "group")
        )
        self.assertEqual(
            celery.command,
            ("/venv/bin/celery", "-A", "app", "worker", "-n", "worker1@%h"),
        )
        self.assertEqual(
            (celery.instances, celery.restart, celery.backoff.giveUpAfter),
            (4, "on-failure", 1),
        )
        self.assertEqual(
            (celery.logs.stdout, celery.logs.maxBytes, celery.logs.backups),
            ("/srv/log/celery.log", 10 * 1024**2, 3),
        )
        self.assertEqual(
            [note.split(":")[0] for note in notes],
            [
                "[inet_http_server] username",
                "[inet_http_server] password",
                "[program",
                "[program",
                "[program",
                "[program",
                "[group",
                "[eventlistener",
            ],
        )
        self.assertIn(
            "[program:celery] command: %(process_num) differs by instance: "
            "written as the first instance's (1)",
            notes,
        )
        self.assertIn("[group:web] section not converted", notes)

    def test_minimal(self) -> None:
        """
        A config of one program converts with nothing left over, its
        booleans spelled C{no} and C{false}.
        """
        config, notes = converted(MINIMAL)
        self.assertEqual(notes, [])
        sleeper = config.programs["sleeper"]
        self.assertEqual(
            (sleeper.command, sleeper.autostart, sleeper.restart),
            (("sleep", "1000"), False, "never"),
        )

    def test_notesAsComments(self) -> None:
        """
        What could not be converted is also written as comments at the top
        of the TOML.
        """
        toml, notes = convertSupervisord(WEBSTACK)
        for note in notes:
            self.assertIn(f"# Not converted: {note}\n", toml)


def program(body: str, name: str = "p") -> tuple[ProgramConfig | None, list[str]]:
    """
    Convert one C{[program:NAME]} section of C{body} (the command given if
    the body has none) and load it.
    """
    if "command" not in body:
        body = "command = run\n" + body
    text = f"[program:{name}]\n" + textwrap.dedent(body)
    config, notes = converted(text, HOME="/home/u")
    return next(iter(config.programs.values()), None), notes


class ConvertKeyTests(SynchronousTestCase):
    """
    Each supervisord program key converts to its equivalent, or is listed.
    """

    def test_autorestart(self) -> None:
        """
        C{autorestart} C{true}, C{false}, C{unexpected} become C{always},
        C{never}, C{on-failure}; anything else is listed.
        """
        for value, restart in [
            ("true", "always"),
            ("false", "never"),
            ("unexpected", "on-failure"),
        ]:
            converted, notes = program(f"autorestart = {value}\n")
            assert converted is not None
            self.assertEqual((converted.restart, notes), (restart, []))
        converted, notes = program("autorestart = sometimes\n")
        assert converted is not None
        self.assertEqual(converted.restart, "on-failure")
        self.assertEqual(
            notes,
            ["[program:p] autorestart: not true, false or unexpected: 'sometimes'"],
        )

    def test_stopGroup(self) -> None:
        """
        C{stopasgroup} or C{killasgroup} true signals the process group;
        both false keep the default.
        """
        for body, kill in [
            ("stopasgroup = true\n", "group"),
            ("killasgroup = yes\n", "group"),
            ("stopasgroup = false\nkillasgroup = 0\n", "tree"),
        ]:
            converted, notes = program(body)
            assert converted is not None
            self.assertEqual((converted.stop.kill, notes), (kill, []))

    def test_logFiles(self) -> None:
        """
        C{AUTO} keeps the default log file; C{NONE} and C{syslog} are listed;
        C{redirect_stderr} merges stderr and makes C{stderr_logfile} unused.
        """
        converted, notes = program(
            "stdout_logfile = AUTO\nstderr_logfile = NONE\n"
            "stdout_logfile_maxbytes = 5KB\n"
        )
        assert converted is not None
        self.assertEqual(
            (converted.logs.stdout, converted.logs.stderr, converted.logs.maxBytes),
            ("/etc/sv/logs/p.out", "/etc/sv/logs/p.err", 5 * 1024),
        )
        self.assertEqual(
            notes,
            [
                "[program:p] stderr_logfile: NONE (no log file) has no "
                "equivalent: one is kept"
            ],
        )
        converted, notes = program(
            "redirect_stderr = true\nstderr_logfile = /x\nstdout_logfile = syslog\n"
        )
        assert converted is not None
        self.assertTrue(converted.logs.merge)
        self.assertEqual(
            notes,
            [
                "[program:p] stderr_logfile: unused with redirect_stderr",
                "[program:p] stdout_logfile: syslog has no equivalent",
            ],
        )

    def test_expansions(self) -> None:
        """
        C{%(program_name)s}, C{%(process_num)d} (formatted), C{%(here)s},
        C{%(ENV_X)s} and C{%%} are expanded; C{$} stays a literal C{$};
        an unknown expansion is kept and listed.
        """
        converted, notes = program(
            "command = /bin/%(program_name)s %(process_num)03d %(here)s "
            "%(ENV_HOME)s 100%% $HOME %(host_node_name)s\n"
            "numprocs_start = 7\n",
            name="tool",
        )
        assert converted is not None
        self.assertEqual(
            converted.command,
            ("/bin/tool", "007", ".", "/home/u", "100%", "$HOME", "%(host_node_name)s"),
        )
        self.assertEqual(
            notes, ["[program:tool] command: %(host_node_name)s has no equivalent"]
        )

    def test_notConverted(self) -> None:
        """
        Unknown keys, bad values, a program without a command and a name
        the TOML config does not allow are listed; a bad value leaves the
        key at its default.
        """
        toml, notes = convertSupervisord(
            "[program:a]\ncommand = a\nnumprocs = many\nautostart = perhaps\n"
            "stdout_logfile_maxbytes = big\nserverurl = x\nexitcodes = 0,2\n"
            "process_name = worker\n"
            "[program:b]\nautostart = true\n"
            "[program:c/d]\ncommand = c\n"
            "[program:e]\ncommand = 'unclosed\n"
        )
        self.assertEqual(
            notes,
            [
                "[program:a] process_name: not converted",
                "[program:a] numprocs: not an integer: 'many'",
                "[program:a] autostart: not a boolean: 'perhaps'",
                "[program:a] stdout_logfile_maxbytes: not a byte size: 'big'",
                "[program:a] serverurl: not converted",
                "[program:a] exitcodes: not converted",
                "[program:b] no command: not converted",
                "[program:c/d] renamed 'c_d' (letters, digits, _ . -)",
                "[program:e] command: cannot be split: No closing quotation",
                "[program:e] no command: not converted",
            ],
        )
        config = parseConfig(toml, environ={})
        self.assertEqual(list(config.programs), ["a", "c_d"])
        self.assertEqual(
            (config.programs["a"].instances, config.programs["a"].autostart),
            (1, True),
        )

    def test_priority(self) -> None:
        """
        Programs are written in priority order, those of equal priority in
        the order of the file; the default priority is 999.
        """
        config, _ = converted(
            "[program:late]\ncommand = l\npriority = 1000\n"
            "[program:default]\ncommand = d\n"
            "[program:first]\ncommand = f\npriority = 1\n"
            "[program:alsoDefault]\ncommand = d\npriority = 999\n"
        )
        self.assertEqual(
            config.startOrder(), ("first", "default", "alsoDefault", "late")
        )


# Words of a command: shell quoting, "$" and "%" included (";" starts a
# comment in supervisord's values, after a space).
_WORDS = st.text(alphabet="ab -'\"$%\\={}", min_size=1, max_size=6)


def quote(value: str) -> str:
    """
    A value of supervisord's C{environment}, double-quoted.
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GeneratedConvertTests(SynchronousTestCase):
    """
    Generated supervisord programs convert to configs that load with the
    same values.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.lists(_WORDS, min_size=1, max_size=4), min_size=1, max_size=4),
        st.data(),
    )
    def test_roundTrip(self, commands: list[list[str]], data: st.DataObject) -> None:
        """
        Each program's argv, environment, numbers and booleans come back as
        written, with nothing listed as not converted.
        """
        sections = []
        expected = {}
        for index, argv in enumerate(commands):
            name = f"p{index}"
            env = data.draw(
                st.dictionaries(st.sampled_from(["A", "B_1"]), _WORDS, max_size=2)
            )
            numprocs = data.draw(st.integers(1, 3))
            startsecs = data.draw(st.integers(0, 60))
            autostart = data.draw(st.booleans())
            command = shlex.join(argv).replace("%", "%%")
            environment = ",".join(
                f"{key}={quote(value)}".replace("%", "%%") for key, value in env.items()
            )
            lines = [
                f"[program:{name}]",
                f"command = {command}",
                f"numprocs = {numprocs}",
                f"startsecs = {startsecs}",
                f"autostart = {str(autostart).lower()}",
            ]
            if environment:
                lines.append(f"environment = {environment}")
            sections.append("\n".join(lines))
            expected[name] = (tuple(argv), env, numprocs, float(startsecs), autostart)
        config, notes = converted("\n\n".join(sections) + "\n")
        self.assertEqual(notes, [])
        self.assertEqual(
            {
                name: (p.command, dict(p.env), p.instances, p.ready.after, p.autostart)
                for name, p in config.programs.items()
            },
            expected,
        )
