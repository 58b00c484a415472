"""Waterflow's control plane and the user CLI `waterflow`."""


def __getattr__(name: str) -> str:
    # Read from the installed distribution when asked for: importing importlib.metadata costs
    # more than the rest of `waterflow` up to its command, and only --version and the server
    # need the version.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("waterflow-server")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
