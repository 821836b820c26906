"""Deprecated: ``benchmark.training`` moved to ``methods.core.training``; this alias stays for one release so that plugins keep working."""

import warnings

from methods.core.training import *  # noqa: F403
from methods.core.training import __all__  # noqa: F401

warnings.warn("benchmark.training is deprecated; import methods.core.training instead", DeprecationWarning, stacklevel=2)
