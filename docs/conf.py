"""
Sphinx configuration: the narrative docs (this folder) and, through
pydoctor's Sphinx extension, the API reference generated from the epytext
docstrings into C{api/}, as Twisted builds its own.

Build with C{bash tools/docs.sh} (warnings are errors, for Sphinx and for
pydoctor: the extension turns each pydoctor warning into a Sphinx warning).

Links to Python's and Twisted's documentation need those projects'
C{objects.inv} inventories, and the build must work offline, so neither is
downloaded:

  - Python's comes from the Debian/Ubuntu C{python3-doc} package
    (C{tools/docs.sh} installs it);
  - Twisted's is generated from the installed Twisted by pydoctor (the tool
    that builds Twisted's API docs, so its pages have the same names), once
    per Twisted version, into C{_build/intersphinx/}.

The links point at the online documentation (docs.python.org, and
docs.twisted.org for the installed Twisted version).  Every reference must
resolve: nothing external is left as an unresolved name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version as distributionVersion
from pathlib import Path

from sphinx.errors import ConfigError

import twisted

_docs = Path(__file__).resolve().parent
_root = _docs.parent
# For pydoctor's --system-class (docs/_pydoctor.py).
sys.path.insert(0, str(_docs))

project = "txspawn"
author = "txspawn contributors"
copyright = "txspawn contributors"
release = distributionVersion("txspawn")
version = release

extensions = [
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
]
exclude_patterns = ["_build"]
# Every cross-reference must resolve (tools/docs.sh also passes -n).
nitpicky = True


def _pythonInventory() -> Path:
    """
    Python's intersphinx inventory, from Debian's C{python3-doc}.
    """
    inventory = Path("/usr/share/doc/python3/html/objects.inv")
    if not inventory.is_file():
        raise ConfigError(
            f"{inventory} is missing: install Python's documentation "
            "(`apt-get install python3-doc`; tools/docs.sh does it)"
        )
    return inventory


def _twistedInventory() -> Path:
    """
    An intersphinx inventory of the installed Twisted, made by pydoctor
    once per Twisted version and kept in C{_build/intersphinx/}.
    """
    cache = _docs / "_build" / "intersphinx"
    inventory = cache / f"twisted-{twisted.__version__}.inv"
    if inventory.is_file():
        return inventory
    scratch = cache / f"twisted-{twisted.__version__}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    # Twisted's own docstring warnings are Twisted's business: not shown.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pydoctor",
            "--make-intersphinx",
            "--quiet",
            "--docformat=epytext",
            "--project-name=Twisted",
            f"--html-output={scratch}",
            os.path.dirname(twisted.__file__),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (scratch / "objects.inv").replace(inventory)
    shutil.rmtree(scratch)
    return inventory


_python = ("https://docs.python.org/3/", _pythonInventory())
_twisted = (
    f"https://docs.twisted.org/en/twisted-{twisted.__version__}/api/",
    _twistedInventory(),
)

intersphinx_mapping = {
    "python": (_python[0], str(_python[1])),
    "twisted": (_twisted[0], str(_twisted[1])),
}

# The API reference: pydoctor writes it to api/ and Sphinx resolves
# :py: references to txspawn's names through its inventory.
pydoctor_url_path = "api/"
pydoctor_args = [
    "--html-output={outdir}/api/",
    "--project-name=txspawn",
    f"--project-version={release}",
    "--project-url=../index.html",
    f"--project-base-dir={_root}",
    "--docformat=epytext",
    "--system-class=_pydoctor.TxspawnSystem",
    # pydoctor adds the "/" between the base URL and the page itself.
    f"--intersphinx-file={_python[1]}::{_python[0].rstrip('/')}",
    f"--intersphinx-file={_twisted[1]}::{_twisted[0].rstrip('/')}",
    str(_root / "txspawn"),
]
