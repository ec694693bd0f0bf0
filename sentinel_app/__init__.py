"""Fangorn Sentinel: a self-hosted on-call platform."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fangorn-sentinel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
