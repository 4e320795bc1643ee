#!/usr/bin/env bash
# Build the documentation into docs/_build/html: the narrative docs (Sphinx)
# and the API reference generated from the epytext docstrings (pydoctor,
# through its Sphinx extension, into docs/_build/html/api/).  Every warning
# is an error, Sphinx's and pydoctor's alike, and every cross-reference must
# resolve (-n); the script exits non-zero on any.  Offline: Python's and
# Twisted's inventories are local (see docs/conf.py).
#
# Usage: bash tools/docs.sh      (after the README's first command made .venv)
# Then open docs/_build/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ ! -x "$py" ]; then
    echo "tools/docs.sh: no .venv here; create it with the README's first command" >&2
    exit 1
fi

# Python's intersphinx inventory comes from Debian's python3-doc.
if [ ! -f /usr/share/doc/python3/html/objects.inv ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq python3-doc
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq python3-doc
    fi
fi

# The `docs` extra of pyproject.toml (part of `dev`), installed without
# reinstalling txspawn itself.
if ! "$py" -c 'import sphinx, pydoctor' 2>/dev/null; then
    mapfile -t deps < <("$py" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["docs"]))
')
    "$py" -m pip install -q "${deps[@]}"
fi

# -E: a fresh environment, so that the warnings of unchanged pages are
# reported again; --keep-going: report every warning, then fail.
rm -rf docs/_build/html docs/_build/doctrees
"$py" -m sphinx -b html -E -n -W --keep-going -q \
    -d docs/_build/doctrees docs docs/_build/html
echo "docs: docs/_build/html/index.html (API reference: docs/_build/html/api/index.html)"
