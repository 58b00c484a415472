"""`waterflow-gha`: the agent-side commands of the gha node package.

    waterflow-gha setup-node 24 [--cache DIR]

puts Node 24 into the action cache (from the npm package `node-linux-<arch>@24`), where
JavaScript actions that ask for `node24` find it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from waterflow import NodeError
from waterflow_nodes_gha._nodejs import node_version, provision_node
from waterflow_nodes_gha._settings import NODE_MAJORS, Settings


def _setup_node(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    cache = Path(args.cache) if args.cache else settings.cache_dir
    major = int(args.major.removeprefix("node"))
    path = provision_node(cache, major, log=lambda line: print(line, file=sys.stderr))
    print(f"node{major} {node_version(path)} {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="waterflow-gha", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser(
        "setup-node", help="provision a Node major into the action cache for node<major> actions"
    )
    setup.add_argument(
        "major", choices=[str(m) for m in NODE_MAJORS] + [f"node{m}" for m in NODE_MAJORS]
    )
    setup.add_argument("--cache", help="the action cache (default: WATERFLOW_GHA_CACHE)")
    args = parser.parse_args(argv)
    try:
        return _setup_node(args)
    except NodeError as exc:
        print(f"waterflow-gha: error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
