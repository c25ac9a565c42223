"""Shared test set-up: the ``needs_mirror`` marker skips a test when ``XLTSTATS_MIRROR`` (the
shared published-data mirror) is not set."""
import os

import pytest


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_mirror") and not os.environ.get("XLTSTATS_MIRROR"):
        pytest.skip("XLTSTATS_MIRROR is not set (the shared published-data mirror is needed)")
