"""
The listing of the spawn-options how-to (C{docs/howto/options.rst}) runs on
every engine x monitor and does what the page says.
"""

from __future__ import annotations

from typing import Any, cast

from tests.builders import MixinBase, makeTestCaseClasses
from tests.test_howto_listings import ListingsMixin


class OptionsListingMixin(MixinBase):
    """
    C{spawn_options.py}'s C{main(reactor)} succeeds on a real reactor.
    """

    def test_spawnOptions(self) -> None:
        """
        The child reports the umask, the file limit and the new session it
        was given.
        """
        result, printed = ListingsMixin.runListing(cast(Any, self), "spawn_options")
        self.assertEqual(result, ["0027", "256", "True"])
        self.assertIn("session leader: True", printed)


globals().update(makeTestCaseClasses(OptionsListingMixin))
