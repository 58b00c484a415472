"""The `waterflow run` side of `waterflow up`: hand the run to the running service and print
what it sends back.

Only the standard library is imported here: the point of `waterflow up` is that a run's
command costs a Python start and a socket, not the imports of Temporal's client, of the
language and of the node plugins, which the service has already done.

The protocol, over the service's Unix socket: one JSON object per line. The client sends one
request (`{"op": "run", ...}`, `{"op": "stop"}` or `{"op": "ping"}`), and for a run, later,
`{"op": "cancel"}` when the user presses Ctrl-C. The service answers with `{"out": text}` and
`{"err": text}` lines (what the command prints), and ends with `{"exit": code}`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

# Not `typing.TYPE_CHECKING`: importing typing costs this command more than all the rest it
# imports (type checkers take any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

#: How long `waterflow up --detach` waits for the service to be ready.
_READY_TIMEOUT = 120.0

#: Changes when the protocol does, so that a client never talks to a service it misreads.
PROTOCOL = 1
# What stops a run the command follows: Ctrl-C, and SIGTERM taken as Ctrl-C.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def up_dir() -> str:
    """Where `waterflow up` keeps its socket, its log and its dev server's log."""
    given = os.environ.get("WATERFLOW_UP_DIR")
    if given:
        return given
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "waterflow", "up")


def socket_path() -> str:
    return os.path.join(up_dir(), "up.sock")


def installation() -> str:
    """What identifies this installation: a service started from another one (another
    virtual environment, say) would run the steps with other nodes and other code."""
    return f"{sys.executable}:{os.path.dirname(os.path.realpath(__file__))}"


class UpError(Exception):
    """The service could not be reached or went away; one line for the user."""


def connect() -> socket.socket | None:
    """A connection to the running service, or None when there is none (no socket, or a
    socket left behind by a service that is gone)."""
    path = socket_path()
    if not os.path.exists(path):  # also a path too long for a socket: none can be there
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise UpError(f"cannot reach waterflow up at {path}: {exc.strerror or exc}") from None
    return sock


#: The longest path of a Unix socket (sun_path, with its terminating NUL) on Linux.
SOCKET_PATH_MAX = 107


def socket_path_problem() -> str | None:
    """Why `waterflow up` cannot listen at its socket path, if it cannot."""
    path = socket_path()
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        return (
            f"waterflow up: its socket path {path} is longer than a Unix socket's "
            f"{SOCKET_PATH_MAX} bytes; set WATERFLOW_UP_DIR to a shorter directory"
        )
    return None


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def messages(sock: socket.socket) -> Any:
    """The service's messages, one JSON object per line, until it closes the connection."""
    with sock.makefile("rb") as lines:
        for line in lines:
            yield json.loads(line)


def request(message: dict[str, Any]) -> dict[str, Any] | None:
    """One request, its one answer; None when no service runs."""
    sock = connect()
    if sock is None:
        return None
    with sock:
        send(sock, {**message, "protocol": PROTOCOL})
        for answer in messages(sock):
            return dict(answer)
    raise UpError(f"waterflow up at {socket_path()} closed the connection without an answer")


def already_running() -> str | None:
    """What to say when a service answers at the socket already."""
    running = request({"op": "ping"})
    if running is None:
        return None
    return (
        f"waterflow up is already running (pid {running.get('pid')}, {socket_path()}); "
        "`waterflow down` stops it"
    )


#: Whether this process asked the service already (`fast_run`), so that the command does not
#: ask again when it runs the workflow itself.
tried = False

#: The `waterflow run` options a run through the service takes: option -> (request key, takes
#: a value, may repeat). Any other option is for a run of the command's own (or is --help),
#: and `fast_run` leaves the command line to click. A test keeps this in step with the
#: command's declared options.
RUN_OPTIONS: dict[str, tuple[str, bool, bool]] = {
    "--input": ("inputs", True, True),
    "--namespace": ("namespace", True, False),
    "--workspace": ("workspace", True, False),
    "--json": ("as_json", False, False),
    "--event": ("event", True, False),
    "--event-path": ("event_path", True, False),
    "--job": ("jobs", True, True),
}
#: Variables that send `waterflow run` elsewhere (--temporal-address, --server).
ELSEWHERE_VARIABLES = ("WATERFLOW_TEMPORAL_ADDRESS", "WATERFLOW_SERVER_ADDRESS")


def run_request(
    file: str,
    *,
    inputs: tuple[str, ...] | list[str] = (),
    namespace: str = "default",
    workspace: str | None = None,
    as_json: bool = False,
    event: str | None = None,
    event_path: str | None = None,
    jobs: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """What a run through the service sends; paths are the command's, relative to `cwd`."""
    return {
        "file": file,
        "cwd": os.getcwd(),
        "inputs": list(inputs),
        "namespace": namespace,
        "workspace": workspace,
        "as_json": as_json,
        "event": event,
        "event_path": event_path,
        "jobs": list(jobs),
    }


def parse_run(args: list[str]) -> dict[str, Any] | None:
    """The request of `waterflow run ARGS` when the service can take it; None for anything
    else (click then parses the command line, and says what is wrong with it)."""
    if any(os.environ.get(name) for name in ELSEWHERE_VARIABLES):
        return None
    values: dict[str, Any] = {
        "namespace": os.environ.get("WATERFLOW_TEMPORAL_NAMESPACE") or "default"
    }
    files: list[str] = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-") or arg == "-":
            files.append(arg)
            continue
        if arg not in RUN_OPTIONS:
            return None
        key, takes_value, repeats = RUN_OPTIONS[arg]
        value: Any = next(rest, None) if takes_value else True
        if value is None:
            return None
        if repeats:
            values.setdefault(key, []).append(value)
        else:
            values[key] = value
    if len(files) != 1:
        return None
    return run_request(files[0], **values)


def fast_run(argv: list[str]) -> None:
    """`waterflow run …` through a running service before click is even imported; exits with
    the run's code, or returns when the command must be parsed and run as usual."""
    global tried
    if argv[:1] != ["run"] or not os.path.exists(socket_path()):
        return
    request = parse_run(argv[1:])
    if request is None:
        return
    tried = True
    try:
        code = run(request)
    except UpError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
    if code is not None:
        sys.exit(code)


def _print(text: str, stream: TextIO) -> None:
    stream.write(text)
    stream.flush()


def run(run_request: dict[str, Any]) -> int | None:
    """Run through the service; the exit code, or None when no service (for this
    installation) runs, and the run is then the command's own."""
    sock = connect()
    if sock is None:
        return None
    cancelled = False

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal cancelled
        if cancelled:
            raise KeyboardInterrupt
        cancelled = True
        try:
            send(sock, {"op": "cancel"})
        except OSError:  # the service is gone: the end of its messages says so
            pass

    # SIGTERM is taken as Ctrl-C is, as a command running the workflow itself takes it.
    previous = {signum: signal.signal(signum, on_interrupt) for signum in _STOP_SIGNALS}
    try:
        with sock:
            send(
                sock,
                {
                    **run_request,
                    "op": "run",
                    "protocol": PROTOCOL,
                    "installation": installation(),
                    "tty": sys.stdout.isatty(),
                },
            )
            for message in messages(sock):
                if "out" in message:
                    _print(message["out"], sys.stdout)
                elif "err" in message:
                    _print(message["err"], sys.stderr)
                elif "exit" in message:
                    return int(message["exit"])
                elif "elsewhere" in message:
                    # Not this installation's service: the command runs the workflow itself.
                    _print(f"note: {message['elsewhere']}\n", sys.stderr)
                    return None
    except KeyboardInterrupt:
        _print("interrupted; the run goes on in waterflow up\n", sys.stderr)
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log = os.path.join(up_dir(), "up.log")
    raise UpError(f"waterflow up stopped before the run ended; its log: {log}")


def detach(namespace: str) -> int:
    """Start `waterflow up` in a session of its own, logging to up.log; wait until it is
    ready (or has failed) and say which."""
    import select
    import subprocess
    import time

    directory = up_dir()
    log = os.path.join(directory, "up.log")
    problem = socket_path_problem()
    if problem:
        sys.stderr.write(f"error: {problem}\n")
        return 1
    running = already_running()
    if running:  # said before its log is truncated below
        sys.stderr.write(f"error: {running}\n")
        return 1
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        out = open(log, "wb")  # noqa: SIM115 - closed below, once the child has it
    except OSError as exc:
        sys.stderr.write(f"error: waterflow up: cannot write {log}: {exc.strerror}\n")
        return 1
    read_end, write_end = os.pipe()
    with out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from waterflow_server.cli import main; main()",
                "up",
                "--namespace",
                namespace,
                "--ready-fd",
                str(write_end),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    ready = b""
    deadline = time.monotonic() + _READY_TIMEOUT
    with os.fdopen(read_end, "rb") as pipe:
        # The service writes one line and closes its end when ready; it closes it by exiting
        # when it fails.
        while time.monotonic() < deadline:
            readable, _, _ = select.select([pipe], [], [], deadline - time.monotonic())
            if not readable:
                break
            chunk = os.read(pipe.fileno(), 4096)
            if not chunk:
                break
            ready += chunk
    if ready:
        sys.stderr.write(ready.decode() + f"its log: {log}; `waterflow down` stops it\n")
        return 0
    if process.poll() is None:
        process.terminate()
        sys.stderr.write(
            f"error: waterflow up was not ready within {_READY_TIMEOUT:.0f}s; see {log}\n"
        )
        return 1
    with open(log, encoding="utf-8", errors="replace") as written:
        lines = [line for line in written.read().splitlines() if line.strip()]
    why = lines[-1] if lines else ""
    if not why.startswith("error: "):  # the service's own one-line error, else a pointer
        why = f"error: waterflow up did not start (exit code {process.returncode}); see {log}"
    sys.stderr.write(why + "\n")
    return 1


def down_command() -> int:
    """`waterflow down`: stop the running `waterflow up` and wait until it has."""
    sock = connect()
    if sock is None:
        sys.stderr.write("waterflow down: no waterflow up is running\n")
        return 0
    with sock:
        send(sock, {"op": "stop", "protocol": PROTOCOL})
        pid = None
        for message in messages(sock):  # until the service closes: it has stopped
            pid = message.get("pid", pid)
    sys.stderr.write(f"waterflow down: waterflow up (pid {pid}) stopped\n")
    return 0
