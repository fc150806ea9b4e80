"""trdnet: brain-network connectivity and personalised DLPFC TMS targets."""

from ._version import __version__

__all__ = ["__version__"]
