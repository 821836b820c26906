"""Deprecated: ``benchmark.data`` moved to ``methods.core.data``; this alias stays for one release so that plugins keep working."""

import warnings

from methods.core.data import *  # noqa: F403
from methods.core.data import __all__  # noqa: F401

warnings.warn("benchmark.data is deprecated; import methods.core.data instead", DeprecationWarning, stacklevel=2)
