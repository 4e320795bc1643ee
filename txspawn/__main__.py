# -*- test-case-name: tests.test_cli -*-
"""
C{python -m txspawn}: see L{txspawn._cli.main}.
"""

from __future__ import annotations

import sys

from txspawn._cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
