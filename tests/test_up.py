"""`waterflow up` / `waterflow down`: the embedded default kept running, and `waterflow run`
handing its runs to it; real processes, a real dev server, a real Unix socket."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from waterflow_server._up_client import PROTOCOL, installation

BIN = Path(sys.executable).parent
WATERFLOW = str(BIN / "waterflow")


def env_for(up_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    return {**env, "WATERFLOW_UP_DIR": str(up_dir), **extra}


def waterflow(
    *argv: str, up_dir: Path, cwd: Path, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WATERFLOW, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env_for(up_dir, **extra),
    )


def read_fd_until(fd: int, marker: bytes, what: str, timeout: float = 60) -> bytes:
    """What the descriptor `fd` (a pipe or FIFO) gives until `marker` is in it, within
    `timeout`; `what` names it in the failure."""
    data = b""
    deadline = time.monotonic() + timeout
    # A FIFO's reader is not readable until a writer opens it: select waits for that too.
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no {marker!r} from {what} within {timeout}s: {data!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"{what} was closed without {marker!r}: {data!r}")
        data += chunk
    return data


def read_fifo_line(path: Path, timeout: float = 60) -> str:
    """The first line a writer puts into the FIFO at `path`, within `timeout`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return read_fd_until(fd, b"\n", str(path), timeout).decode().splitlines()[0]
    finally:
        os.close(fd)


def temporal_address(directory: Path) -> tuple[str, int]:
    """The dev server's address, from the "waterflow up is ready" line of up.log."""
    line = next(x for x in (directory / "up.log").read_text().splitlines() if "is ready" in x)
    host, port = line.split("temporal=", 1)[1].split()[0].rsplit(":", 1)
    return host, int(port)


def wait_gone(pid: int, timeout: float = 30) -> bool:
    """Whether the process (not a child of this one) has exited within `timeout`: its pidfd
    becomes readable when it does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    return not wait_gone(pid, 0)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A detached `waterflow up` with UP_MARK in its environment: its directory and pid."""
    directory = tmp_path_factory.mktemp("up")
    started = waterflow(
        "up", "--detach", up_dir=directory, cwd=directory, UP_MARK="from-up", timeout=150
    )
    assert started.returncode == 0, started.stderr
    assert "waterflow up: ready (pid " in started.stderr
    pid = int(started.stderr.split("(pid ", 1)[1].split(",", 1)[0])
    yield directory, pid
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid)


@pytest.mark.e2e
def test_run_goes_to_the_running_up_with_its_environment_in_the_commands_directory(
    up: tuple[Path, int], tmp_path: Path
) -> None:
    directory, _ = up
    (tmp_path / "wf.yaml").write_text(
        "name: through-up\n"
        "on:\n"
        "  workflow_dispatch:\n"
        "    inputs:\n"
        "      who: {}\n"
        "jobs:\n"
        "  first:\n"
        "    runs-on: up-q1\n"
        "    outputs:\n"
        "      mark: ${{ steps.s.outputs.mark }}\n"
        "    steps:\n"
        "      - id: s\n"
        "        run: |\n"
        '          echo "mark=$UP_MARK" >> "$GITHUB_OUTPUT"\n'
        "          pwd > where.txt\n"
        "  second:\n"
        "    runs-on: up-q2\n"
        "    needs: first\n"
        "    steps:\n"
        '      - run: echo "got ${{ needs.first.outputs.mark }} ${{ inputs.who }}"\n'
    )
    for attempt in (1, 2):  # the second run finds both queues served already
        proc = waterflow(
            "run",
            "wf.yaml",
            "--input",
            f"who=run{attempt}",
            up_dir=directory,
            cwd=tmp_path,
            UP_MARK="from-the-command",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # No dev server or agent of its own: the run was up's.
        assert "starting the embedded" not in proc.stderr
        assert "first.outputs.mark = from-up" in proc.stdout
        assert "through-up success" in proc.stdout
    assert (tmp_path / "where.txt").read_text().strip() == str(tmp_path.resolve())
    log = (directory / "up.log").read_text()
    assert "Now serving task queues" in log and "up-q2" in log
    assert log.count("job=second") >= 2


@pytest.mark.e2e
def test_json_result_and_a_failing_step_through_up(up: tuple[Path, int], tmp_path: Path) -> None:
    directory, _ = up
    (tmp_path / "fail.yaml").write_text(
        "jobs:\n  j:\n    runs-on: up-q1\n    steps:\n"
        "      - id: a\n        run: echo out=1 >> $GITHUB_OUTPUT\n"
        "      - id: b\n        run: echo bad; exit 4\n"
    )
    proc = waterflow("run", "fail.yaml", "--json", up_dir=directory, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "failure"
    steps = result["jobs"]["j"]["steps"]
    assert [s["conclusion"] for s in steps] == ["success", "failure"]


@pytest.mark.e2e
def test_a_bad_file_through_up_gets_its_one_line_error(
    up: tuple[Path, int], tmp_path: Path
) -> None:
    directory, _ = up
    (tmp_path / "bad.yaml").write_text(
        "jobs:\n  j:\n    runs-on: up-q1\n    steps:\n      - uses: no-such/node\n"
    )
    proc = waterflow("run", "bad.yaml", up_dir=directory, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("bad.yaml:5:"), proc.stderr
    assert "unknown node 'no-such/node'" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = waterflow("run", "missing.yaml", up_dir=directory, cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "missing.yaml: cannot read: No such file or directory"


def start_slow_run(
    folder: Path, queue: str, env: dict[str, str], *, ignore_sigterm: bool = False
) -> subprocess.Popen[str]:
    """`waterflow run` of a step that sleeps for five minutes, started in `folder`; the step
    writes its sleeper's pid to the FIFO `sleep.pid` there (the event a test waits for). With
    `ignore_sigterm`, the step and its sleeper ignore SIGTERM: stopping it takes a SIGKILL."""
    trap = "          trap '' TERM\n" if ignore_sigterm else ""
    (folder / "slow.yaml").write_text(
        f"jobs:\n  j:\n    runs-on: {queue}\n    steps:\n      - run: |\n{trap}"
        "          sleep 300 &\n          echo $! > sleep.pid\n          wait\n"
    )
    os.mkfifo(folder / "sleep.pid")
    return subprocess.Popen(
        [WATERFLOW, "run", "slow.yaml"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def killed_at_the_end(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Kill `proc` if it still runs when the block ends (a failed wait, a failed check)."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_cancels_the_run_in_up_and_stops_its_step(
    up: tuple[Path, int], tmp_path: Path, signum: signal.Signals
) -> None:
    directory, _ = up
    proc = start_slow_run(tmp_path, "up-q1", env_for(directory))
    with killed_at_the_end(proc):
        sleeper = int(read_fifo_line(tmp_path / "sleep.pid"))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "cancelling the run" in err
    assert "cancelled" in out
    assert wait_gone(sleeper), "the step's process outlived the cancelled run"


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc's children lists."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def dev_servers_below(pid: int) -> list[int]:
    """The Temporal dev servers among the processes below `pid`."""
    return [
        child
        for child in descendants(pid)
        if b"start-dev" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def embedded_env(folder: Path) -> dict[str, str]:
    """The environment of a command that runs the workflow itself: no `waterflow up` in its
    state directory (under `folder`), the embedded default's files under `folder` too."""
    directory = folder / "state"
    directory.mkdir()
    return env_for(directory, WATERFLOW_EMBEDDED_DIR=str(folder / "embedded"))


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_embedded_run_cancels_its_run_and_stops_its_dev_server(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # No `waterflow up` here: the command starts its own dev server and agent. SIGTERM (a
    # service manager, CI cancelling a job) is taken as Ctrl-C is: the run is cancelled, and
    # the dev server and the step's processes do not outlive the command.
    env = embedded_env(tmp_path)
    proc = start_slow_run(tmp_path, "own-q", env)
    with killed_at_the_end(proc):
        sleeper = int(read_fifo_line(tmp_path / "sleep.pid", timeout=120))
        servers = dev_servers_below(proc.pid)
        assert servers, "no dev server below the command"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 1, out + err
    assert "cancelling the run (Ctrl-C again to stop at once)" in err
    assert "cancelled" in out
    assert "Traceback" not in err
    assert wait_gone(sleeper), "the step's process outlived the cancelled run"
    assert all(wait_gone(server) for server in servers), "the dev server outlived the command"


@pytest.mark.e2e
def test_a_second_signal_stops_an_embedded_run_at_once_and_still_cleans_up(
    tmp_path: Path,
) -> None:
    # The step ignores SIGTERM, so cancelling it takes the agent's grace period: the second
    # signal arrives while the run is still being cancelled.
    env = embedded_env(tmp_path)
    proc = start_slow_run(tmp_path, "own-q", env, ignore_sigterm=True)
    assert proc.stderr is not None
    with killed_at_the_end(proc):
        sleeper = int(read_fifo_line(tmp_path / "sleep.pid", timeout=120))
        servers = dev_servers_below(proc.pid)
        proc.send_signal(signal.SIGTERM)
        before = read_fd_until(proc.stderr.fileno(), b"cancelling the run", "stderr").decode()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    err = before + err
    assert proc.returncode == 130, out + err
    assert "interrupted; the run ended with the embedded dev server" in err
    assert "Traceback" not in err
    assert servers and all(wait_gone(server) for server in servers), "the dev server outlived it"
    assert wait_gone(sleeper), "the step's process outlived the command"


@pytest.mark.e2e
def test_up_refuses_to_start_twice_and_an_old_client_runs_by_itself(
    up: tuple[Path, int], tmp_path: Path
) -> None:
    directory, pid = up
    again = waterflow("up", "--detach", up_dir=directory, cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: waterflow up is already running (pid {pid}, {directory / 'up.sock'}); "
        "`waterflow down` stops it"
    )
    assert pid_alive(pid)

    # A command of another version, installation or namespace is told to run the workflow
    # itself, not misread; a request the service does not know gets a one-line error.
    def ask(message: dict[str, object]) -> list[dict[str, object]]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(directory / "up.sock"))
            sock.sendall(json.dumps(message).encode() + b"\n")
            return [json.loads(line) for line in sock.makefile("rb")]

    assert "another version" in str(ask({"op": "run", "protocol": 0})[0]["elsewhere"])
    other = {"op": "run", "protocol": PROTOCOL, "installation": "/elsewhere/python:/x"}
    assert "another installation" in str(ask(other)[0]["elsewhere"])
    namespace = {**other, "installation": installation(), "namespace": "other-ns"}
    assert "serves namespace 'default'" in str(ask(namespace)[0]["elsewhere"])
    assert ask({"op": "dance", "protocol": PROTOCOL}) == [
        {"err": "error: waterflow up: unknown request 'dance'\n"},
        {"exit": 2},
    ]


_THIN = """
import sys
from waterflow_server.{module} import main

file = sys.argv[1]
sys.argv = ["waterflow", "run", file, "--json"]
try:
    main()
except SystemExit as exit:
    code = exit.code
with open(file + ".modules", "w") as out:
    out.write("\\n".join([str(code), *sorted(sys.modules)]))
"""


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("module", "light"),
    [
        ("_entry", ("click", "attrs")),  # the `waterflow` command as installed
        ("cli", ()),  # click's command, when the entry point did not take it
    ],
)
def test_a_run_through_up_imports_neither_temporal_nor_the_language(
    up: tuple[Path, int], tmp_path: Path, module: str, light: tuple[str, ...]
) -> None:
    """What makes the command fast: Python and a socket; up has the rest loaded."""
    directory, _ = up
    (tmp_path / "ok.yaml").write_text(
        "jobs:\n  j:\n    runs-on: up-q1\n    steps:\n      - run: 'true'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _THIN.replace("{module}", module), "ok.yaml"],
        cwd=tmp_path,
        env=env_for(directory),
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, *modules = (tmp_path / "ok.yaml.modules").read_text().splitlines()
    assert code == "0", proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["status"] == "success"
    heavy = ("temporalio", "waterflow.", "loguru", "grpc", "ruamel", "cattrs", *light)
    assert [m for m in modules if m.startswith(heavy)] == []


def test_every_run_option_either_goes_to_up_or_leaves_the_command_line_to_click() -> None:
    """The entry point parses `waterflow run` itself for up; a new option of the command
    must be taught to it, or it would be passed over silently."""
    from waterflow_server import _up_client, cli

    for param in cli.run.params:
        if not isinstance(param, click.Option):
            continue
        for opt in param.opts:
            taken = opt in _up_client.RUN_OPTIONS
            assert taken or _up_client.parse_run(["f.yaml", opt, "x"]) is None, opt
        # Read by parse_run, or meaningless without --server (whose variable it checks).
        understood = (
            *_up_client.ELSEWHERE_VARIABLES,
            "WATERFLOW_TEMPORAL_NAMESPACE",
            "WATERFLOW_SERVER_TOKEN",
            "WATERFLOW_SERVER_TLS",
            "WATERFLOW_SERVER_TLS_CA",
        )
        assert param.envvar is None or param.envvar in understood, param.envvar


def test_run_options_parsed_for_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from waterflow_server._up_client import parse_run

    monkeypatch.delenv("WATERFLOW_TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("WATERFLOW_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("WATERFLOW_TEMPORAL_NAMESPACE", "ns1")
    request = parse_run(["--input", "a=1", "wf.yaml", "--json", "--input", "b=2", "--job", "j"])
    assert request is not None
    assert request["file"] == "wf.yaml"
    assert request["inputs"] == ["a=1", "b=2"]
    assert request["jobs"] == ["j"]
    assert request["as_json"] is True
    assert request["namespace"] == "ns1"
    assert parse_run(["wf.yaml", "--secret", "A=1"]) is None  # an agent of its own
    assert parse_run(["wf.yaml", "--input"]) is None  # click says what is missing
    assert parse_run(["a.yaml", "b.yaml"]) is None
    assert parse_run(["wf.yaml", "--help"]) is None
    monkeypatch.setenv("WATERFLOW_TEMPORAL_ADDRESS", "localhost:7233")
    assert parse_run(["wf.yaml"]) is None


@pytest.mark.e2e
def test_down_stops_up_and_its_dev_server(up: tuple[Path, int], tmp_path: Path) -> None:
    directory, pid = up
    proc = waterflow("down", up_dir=directory, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"waterflow down: waterflow up (pid {pid}) stopped"
    assert wait_gone(pid)
    assert not (directory / "up.sock").exists()
    with pytest.raises(OSError), socket.create_connection(temporal_address(directory), 1):
        pass  # the dev server is gone with it
    again = waterflow("down", up_dir=directory, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stderr.strip() == "waterflow down: no waterflow up is running"


@pytest.mark.e2e
def test_without_a_live_up_run_starts_its_own_and_secrets_never_go_to_up(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    # A socket left behind by a killed `waterflow up`: nothing listens on it.
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(directory / "up.sock"))
    left.close()
    (tmp_path / "wf.yaml").write_text(
        "jobs:\n  j:\n    runs-on: own-q\n    steps:\n"
        '      - run: test "${{ secrets.TOKEN }}" = s3cret && echo secret-seen\n'
    )
    proc = waterflow(
        "run",
        "wf.yaml",
        "--secret",
        "TOKEN=s3cret",
        up_dir=directory,
        cwd=tmp_path,
        WATERFLOW_EMBEDDED_DIR=str(tmp_path / "embedded"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not running through waterflow up" in proc.stderr
    assert "starting the embedded Temporal dev server" in proc.stderr
    plain = waterflow(
        "run",
        "wf.yaml",
        up_dir=directory,
        cwd=tmp_path,
        WATERFLOW_EMBEDDED_DIR=str(tmp_path / "embedded"),
    )
    assert plain.returncode == 1  # no secret given, none taken from anywhere
    assert "starting the embedded Temporal dev server" in plain.stderr
    assert "not running through waterflow up" not in plain.stderr


def test_up_in_a_directory_it_cannot_create_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    proc = waterflow("up", "--detach", up_dir=tmp_path / "file" / "up", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: waterflow up: cannot write {tmp_path / 'file' / 'up' / 'up.log'}: Not a directory"
    )


def test_a_socket_path_too_long_is_said_in_one_line_and_runs_go_on_without_up(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    for argv in (("up", "--detach"), ("up",)):
        proc = waterflow(*argv, up_dir=deep, cwd=tmp_path)
        assert proc.returncode == 1
        assert proc.stderr.strip() == (
            f"error: waterflow up: its socket path {deep / 'up.sock'} is longer than a Unix "
            "socket's 107 bytes; set WATERFLOW_UP_DIR to a shorter directory"
        )
    # No up can listen there, so a run is the command's own: it does not fail on the path.
    down = waterflow("down", up_dir=deep, cwd=tmp_path)
    assert (down.returncode, down.stderr.strip()) == (
        0,
        "waterflow down: no waterflow up is running",
    )
