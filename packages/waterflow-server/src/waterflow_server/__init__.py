"""Waterflow's control plane and the user CLI `waterflow`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("waterflow-server")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
