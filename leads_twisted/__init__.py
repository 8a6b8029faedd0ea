"""leads_twisted: the LEADS communication system on Twisted, as a library and as a ``twistd`` daemon."""

from leads_twisted.logger import L, Level

__all__ = ["L", "Level"]
__version__ = "0.1.0"
