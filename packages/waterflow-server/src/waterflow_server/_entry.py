"""The `waterflow` command's entry point.

A `waterflow run` that a running `waterflow up` can take goes to it before click and the
commands are imported (about a tenth of a second of a run's whole time); everything else is
the click application of `cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    from waterflow_server._up_client import fast_run

    fast_run(sys.argv[1:])
    from waterflow_server.cli import main as cli

    cli()
