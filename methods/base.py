"""Deprecated: ``methods.base`` moved to ``methods.api``; this alias stays for one release so that plugins keep working."""

import warnings

from methods.api import *  # noqa: F403
from methods.api import __all__  # noqa: F401

warnings.warn("methods.base is deprecated; import methods.api instead", DeprecationWarning, stacklevel=2)
