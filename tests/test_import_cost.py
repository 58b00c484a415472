"""What an agent imports at start: every agent pays for it before its first poll (target:
ready in under a second, issue 7). Libraries that only some steps need are imported when such
a step runs; these tests say which one came back to start time. Fresh interpreters, no timing.
"""

from __future__ import annotations

import subprocess
import sys

# Imported by a step that needs them, never at start: the Docker SDK (docker nodes), httpx
# (the Slack nodes' requests, fetching actions), filelock and tarfile (action and Node caches).
STEP_ONLY = ("docker", "httpx", "httpcore", "filelock", "rich")
# Imported by an agent that reports to the control plane (server.address), not by the others
# (grpc itself comes with temporalio's generated service stubs).
SERVER_ONLY = ("waterflow._wire", "waterflow._proto", "waterflow.agent.reporting")
# The GitHub Actions runner: imported by the first step that runs an action.
ACTION_ONLY = ("waterflow_nodes_gha._action", "waterflow_nodes_gha._fetch")
# The workflow language's parser and checks, and the YAML library: imported with the first
# workflow or config file read. An agent configured by flags and variables reads neither.
FILE_ONLY = ("ruamel", "waterflow.dsl._parse", "waterflow.dsl._validate", "waterflow.dsl._inputs")

_AGENT_START = """
import sys
import waterflow.agent.cli
import waterflow.agent._run
import waterflow.agent.worker
from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.agent.config import load_config

load_config(None, environ={}, overrides={"agent.task_queues": ["q"]})

registry = NodeRegistry()
problems = load_installed_plugins(registry, log=False)
assert not problems, problems
print("\\n".join(registry.names()))
print("--")
print("\\n".join(sorted(sys.modules)))
"""


def test_agent_start_with_every_first_party_plugin_imports_no_step_only_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _AGENT_START], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    names, _, modules = proc.stdout.partition("--\n")
    # The plugins did load: the check below is about a real start.
    for node in ("shell/run", "docker/run", "gha/action", "slack/post"):
        assert node in names.split()
    loaded = [m for m in modules.split() if m.split(".")[0] in STEP_ONLY]
    assert loaded == []
    # Nor what only the control plane's agents need: none is configured here.
    loaded = [m for m in modules.split() if m.startswith(SERVER_ONLY + ACTION_ONLY + FILE_ONLY)]
    assert loaded == []
