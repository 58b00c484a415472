"""Plugins from the plugin directory: finding them, trusting them, importing modules and wheels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow._plugindir import (
    PluginFileError,
    WheelImporter,
    check_directory,
    extract_wheel,
    file_version,
    import_module_file,
    mtime_version,
    read_plugin_file,
    read_wheel,
    scan_plugin_dir,
)
from waterflow._registry import NodeRegistry
from waterflow._reload import PluginReloader
from waterflow.testing import run_node

BIN = Path(sys.executable).parent
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown or switch users")

PLUGIN = """
from waterflow import NodeMetadata, NodeResult, hookimpl

MARK = "VERSION"

class Node:
    async def execute(self, params, context):
        return NodeResult(outputs={"version": MARK})

@hookimpl
def node_metadata():
    return [NodeMetadata(name="NAME", version="VERSION")]

@hookimpl
def register_nodes(registry):
    registry.add("NAME", Node)
"""


def plugin_source(name: str, version: str = "1") -> str:
    return textwrap.dedent(PLUGIN).replace("NAME", name).replace("VERSION", version)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    for sub in ("", "core", "custom"):
        (directory / sub).mkdir(exist_ok=True)
        (directory / sub).chmod(0o755)
    return directory


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def reloader_for(plugin_dir: Path, tmp_path: Path, **env: str) -> PluginReloader:
    return PluginReloader(
        NodeRegistry(),
        plugin_dir=plugin_dir,
        cache_dir=tmp_path / "cache",
        env=env,
        log=False,
    )


# --- finding plugin files ----------------------------------------------------------------------


def test_scan_finds_core_then_custom_then_the_directory_and_skips_the_rest(
    plugin_dir: Path,
) -> None:
    write(plugin_dir / "zeta.py", "")
    write(plugin_dir / "core" / "beta.py", "")
    write(plugin_dir / "custom" / "alpha.whl", "")
    for ignored in (".alpha.py.swp", ".hidden.py", "_helper.py", "notes.txt", "alpha.py~"):
        write(plugin_dir / ignored, "")
    (plugin_dir / "other").mkdir()
    write(plugin_dir / "other" / "nested.py", "")
    scan = scan_plugin_dir(plugin_dir)
    assert scan.files == (
        plugin_dir / "core" / "beta.py",
        plugin_dir / "custom" / "alpha.whl",
        plugin_dir / "zeta.py",
    )
    assert scan.problems == ()
    assert not scan.missing


def test_a_missing_plugin_directory_is_fine(tmp_path: Path) -> None:
    scan = scan_plugin_dir(tmp_path / "nowhere")
    assert scan.missing
    assert scan.problems == ()
    reloader = reloader_for(tmp_path / "nowhere", tmp_path)
    report = reloader.rescan(installed=False)
    assert report.problems == () and report.warnings == ()


def test_missing_subdirectories_are_fine(tmp_path: Path) -> None:
    directory = tmp_path / "flat"
    directory.mkdir()
    write(directory / "one.py", "")
    assert scan_plugin_dir(directory).files == (directory / "one.py",)


def test_a_plugin_directory_that_is_a_file_is_one_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "plugins", "")
    assert scan_plugin_dir(path).problems == (f"plugin directory {path} is not a directory",)


def test_a_plugin_directory_writable_by_others_is_refused(plugin_dir: Path) -> None:
    write(plugin_dir / "one.py", plugin_source("one/node"))
    plugin_dir.chmod(0o757)
    scan = scan_plugin_dir(plugin_dir)
    assert scan.files == ()
    assert scan.problems == (
        f"plugin directory {plugin_dir} is writable by others (mode 0757); refusing to load "
        f"plugins from it: chmod go-w {plugin_dir}",
    )


def test_a_group_writable_subdirectory_is_refused_the_others_load(plugin_dir: Path) -> None:
    write(plugin_dir / "custom" / "two.py", "")
    write(plugin_dir / "one.py", "")
    (plugin_dir / "custom").chmod(0o775)
    scan = scan_plugin_dir(plugin_dir)
    assert scan.files == (plugin_dir / "one.py",)
    custom = plugin_dir / "custom"
    assert scan.problems == (
        f"plugin directory {custom} is writable by group (mode 0775); refusing to load plugins "
        f"from it: chmod go-w {custom}",
    )


def test_a_parent_writable_by_others_is_refused_unless_it_is_roots_and_sticky(
    tmp_path: Path,
) -> None:
    outer = tmp_path / "shared"
    inner = outer / "plugins"
    inner.mkdir(parents=True)
    outer.chmod(0o777)
    with pytest.raises(PluginFileError) as info:
        check_directory(inner)
    assert str(info.value) == (
        f"{outer}, a parent of the plugin directory {inner}, is writable by group and others "
        f"(mode 0777); refusing to load plugins from {inner}: chmod go-w {outer}"
    )
    if os.geteuid() == 0:  # like /tmp: root's and sticky
        outer.chmod(0o1777)
        assert check_directory(inner) == inner


@ROOT_ONLY
def test_a_file_owned_by_another_user_is_refused(plugin_dir: Path) -> None:
    path = write(plugin_dir / "theirs.py", plugin_source("their/node"))
    os.chown(path, 4242, -1)
    with pytest.raises(PluginFileError) as info:
        read_plugin_file(path)
    assert str(info.value) == (
        f"plugin file {path} is owned by uid 4242, not by root or the agent's user (root); "
        f"refusing to load it: chown root {path}"
    )


@ROOT_ONLY
def test_a_directory_owned_by_another_user_is_refused(plugin_dir: Path) -> None:
    os.chown(plugin_dir, 4242, -1)
    assert scan_plugin_dir(plugin_dir).problems == (
        f"plugin directory {plugin_dir} is owned by uid 4242, not by root or the agent's user "
        f"(root); refusing to load plugins from it: chown root {plugin_dir}",
    )


def test_a_world_writable_file_is_refused_with_the_fix(plugin_dir: Path) -> None:
    path = write(plugin_dir / "custom" / "x.py", plugin_source("x/node"), mode=0o666)
    with pytest.raises(PluginFileError) as info:
        read_plugin_file(path)
    assert str(info.value) == (
        f"plugin file {path} is writable by group and others (mode 0666); refusing to load it: "
        f"chmod go-w {path}"
    )
    path.chmod(0o646)
    with pytest.raises(PluginFileError, match=r"is writable by others \(mode 0646\)"):
        read_plugin_file(path)
    path.chmod(0o644)
    assert read_plugin_file(path).data == path.read_bytes()


def test_a_link_to_a_file_in_an_untrusted_directory_is_refused(
    plugin_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "drop"
    elsewhere.mkdir()
    elsewhere.chmod(0o777)
    target = write(elsewhere / "x.py", plugin_source("x/node"))
    link = plugin_dir / "x.py"
    link.symlink_to(target)
    with pytest.raises(PluginFileError) as info:
        read_plugin_file(link)
    assert str(info.value).startswith(f"plugin file {link} links to {target}: ")
    assert f"directory of plugin file {elsewhere} is writable by group and others" in str(
        info.value
    )
    elsewhere.chmod(0o755)
    assert read_plugin_file(link).path == link


def test_a_refused_file_is_reported_by_the_reloader_in_one_line(
    plugin_dir: Path, tmp_path: Path
) -> None:
    path = write(plugin_dir / "custom" / "x.py", plugin_source("x/node"), mode=0o666)
    report = reloader_for(plugin_dir, tmp_path).rescan(installed=False)
    assert [str(p) for p in report.problems] == [
        f"plugin 'x' ({path} {mtime_version(path.stat().st_mtime)}): plugin file {path} is "
        f"writable by group and others (mode 0666); refusing to load it: chmod go-w {path}"
    ]


@ROOT_ONLY
def test_an_unreadable_plugin_directory_is_one_warning_line(tmp_path: Path) -> None:
    # The agent's user (nobody, in a forked child) may not read root's private directory.
    top = Path(tempfile.mkdtemp(prefix="waterflow-unreadable-"))
    try:
        top.chmod(0o755)
        plugins = top / "plugins"
        plugins.mkdir(mode=0o700)
        write(plugins / "x.py", plugin_source("x/node"))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop to nobody, look, report, leave
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                report = reloader_for(plugins, top).rescan(installed=False)
                os.write(write_end, json.dumps(list(report.warnings)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            warnings = json.loads(pipe.read() or "null")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert warnings == [f"cannot read plugin directory {plugins}: Permission denied"]
    finally:
        shutil.rmtree(top)


# --- module files --------------------------------------------------------------------------------


def test_each_load_of_a_module_file_gets_its_own_module(plugin_dir: Path) -> None:
    path = write(plugin_dir / "hot.py", plugin_source("hot/node", "1"))
    first, module1 = import_module_file(read_plugin_file(path))
    write(path, plugin_source("hot/node", "2"))
    second, module2 = import_module_file(read_plugin_file(path))
    assert first.module_root != second.module_root
    assert first.module_root.startswith("waterflow_plugin_hot_")
    assert (module1.MARK, module2.MARK) == ("1", "2")
    assert sys.modules[first.module_root] is module1
    assert module1.__file__ == str(path)
    assert first.plugin is module1


def test_a_module_runs_the_bytes_that_were_checked(plugin_dir: Path) -> None:
    path = write(plugin_dir / "snap.py", plugin_source("snap/node", "checked"))
    read = read_plugin_file(path)
    write(path, "raise RuntimeError('a later state of the file')\n")
    _, module = import_module_file(read)
    assert module.MARK == "checked"


def test_a_module_file_version_is_its_dunder_version_else_its_mtime(plugin_dir: Path) -> None:
    path = write(plugin_dir / "ver.py", '__version__ = "4.2"\n')
    _, module = import_module_file(read_plugin_file(path))
    assert file_version(module, 0) == "4.2"
    path = write(plugin_dir / "nover.py", "")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    _, module = import_module_file(read_plugin_file(path))
    assert file_version(module, path.stat().st_mtime) == "2023-11-14T22:13:20Z"


def test_a_module_that_fails_to_import_leaves_no_module_behind(plugin_dir: Path) -> None:
    path = write(plugin_dir / "bad.py", "import does_not_exist_anywhere\n")
    before = set(sys.modules)
    with pytest.raises(ModuleNotFoundError):
        import_module_file(read_plugin_file(path))
    assert not [n for n in set(sys.modules) - before if n.startswith("waterflow_plugin_bad_")]


async def test_a_module_plugin_runs_as_a_step(plugin_dir: Path, tmp_path: Path) -> None:
    write(plugin_dir / "custom" / "greet.py", plugin_source("greet/hi", "7"))
    reloader = reloader_for(plugin_dir, tmp_path)
    report = reloader.rescan(installed=False)
    assert report.added == ("greet",)
    node = reloader.registry.get("greet/hi")
    assert node is not None
    path = plugin_dir / "custom" / "greet.py"
    assert (node.source.name, node.source.distribution, node.source.origin) == (
        "greet",
        str(path),
        str(path),
    )
    outcome = await run_node("greet/hi", registry=reloader.registry, workspace=tmp_path / "ws")
    assert outcome.outputs == {"version": "7"}


# --- wheels --------------------------------------------------------------------------------------

WHEEL_INIT = """
from waterflow import NodeMetadata, NodeResult, hookimpl

from ._impl import greeting


class Greet:
    async def execute(self, params, context):
        return NodeResult(outputs={"greeting": greeting(params["who"])})


@hookimpl
def node_metadata():
    from waterflow import Parameter

    return [NodeMetadata(name="wheelie/greet", version="1.2.0",
                         parameters=[Parameter("who", required=True)])]


@hookimpl
def register_nodes(registry):
    registry.add("wheelie/greet", Greet)
"""


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real wheel of a tiny plugin, built by `python -m build` with hatchling."""
    project = tmp_path_factory.mktemp("wheelie")
    package = project / "src" / "wf_wheelie"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(WHEEL_INIT))
    (package / "_impl.py").write_text("def greeting(who):\n    return f'Hello, {who}!'\n")
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "waterflow-nodes-wheelie"
            version = "1.2.0"

            [project.entry-points."waterflow.nodes"]
            wheelie = "wf_wheelie"

            [tool.hatch.build.targets.wheel]
            packages = ["src/wf_wheelie"]
            """
        )
    )
    out = project / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=project,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


async def test_a_built_wheel_loads_from_the_plugin_directory(
    built_wheel: Path, plugin_dir: Path, tmp_path: Path
) -> None:
    target = plugin_dir / "custom" / built_wheel.name
    target.write_bytes(built_wheel.read_bytes())
    reloader = reloader_for(plugin_dir, tmp_path)
    report = reloader.rescan(installed=False)
    assert report.problems == ()
    assert report.added == ("wheelie",)
    node = reloader.registry.get("wheelie/greet")
    assert node is not None
    assert (node.source.distribution, node.source.version, node.source.origin) == (
        "waterflow-nodes-wheelie",
        "1.2.0",
        str(target),
    )
    outcome = await run_node(
        "wheelie/greet", {"who": "Ada"}, registry=reloader.registry, workspace=tmp_path / "ws"
    )
    assert outcome.outputs == {"greeting": "Hello, Ada!"}
    (info,) = reloader.plugins()
    assert (info.kind, info.nodes) == ("wheel", ("wheelie/greet",))
    # Not importable under its own name: the agent's other code never sees it.
    assert "wf_wheelie" not in sys.modules


def make_wheel(
    path: Path,
    files: dict[str, str],
    *,
    name: str = "waterflow-nodes-hand",
    version: str = "0.5",
    tag: str = "py3-none-any",
    purelib: str = "true",
    entry_points: str = "[waterflow.nodes]\nhand = wf_hand\n",
    extra: dict[str, str] | None = None,
) -> Path:
    """A wheel written by hand: the files plus a matching *.dist-info."""
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, textwrap.dedent(text))
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n",
        )
        if entry_points:
            archive.writestr(f"{info}/entry_points.txt", entry_points)
        for member, text in (extra or {}).items():
            archive.writestr(member, text)
    path.chmod(0o644)
    return path


HAND = {"wf_hand/__init__.py": PLUGIN.replace("NAME", "hand/node").replace("VERSION", "0.5")}


def wheel_error(path: Path) -> str:
    with pytest.raises(PluginFileError) as info:
        read_wheel(read_plugin_file(path))
    return str(info.value)


def test_a_binary_wheel_is_refused(plugin_dir: Path) -> None:
    path = make_wheel(
        plugin_dir / "bin.whl", HAND, tag="cp311-cp311-manylinux_2_17_x86_64", purelib="false"
    )
    assert wheel_error(path) == (
        f"{path} is not a pure-Python wheel (tag cp311-cp311-manylinux_2_17_x86_64); only "
        "pure-Python wheels load from the plugin directory: pip install the others"
    )


def test_a_wheel_without_entry_points_is_refused(plugin_dir: Path) -> None:
    path = make_wheel(plugin_dir / "none.whl", HAND, entry_points="")
    assert wheel_error(path) == (
        f"{path} declares no 'waterflow.nodes' entry point in "
        "waterflow_nodes_hand-0.5.dist-info/entry_points.txt"
    )


def test_a_wheel_with_a_path_outside_it_is_refused(plugin_dir: Path) -> None:
    path = make_wheel(plugin_dir / "evil.whl", HAND, extra={"../../evil.py": "x = 1\n"})
    assert wheel_error(path) == (
        f"{path} holds a file outside the wheel ('../../evil.py'); refusing it"
    )


def test_a_wheel_with_two_dist_infos_is_refused(plugin_dir: Path) -> None:
    path = make_wheel(plugin_dir / "two.whl", HAND, extra={"other-1.dist-info/METADATA": ""})
    assert wheel_error(path) == (
        f"{path}: a wheel has one *.dist-info directory; found other-1.dist-info, "
        "waterflow_nodes_hand-0.5.dist-info"
    )


def test_a_file_that_is_not_a_zip_is_not_a_wheel(plugin_dir: Path) -> None:
    path = write(plugin_dir / "junk.whl", "not a zip")
    assert wheel_error(path) == f"{path} is not a wheel: File is not a zip file"


def test_a_wheel_is_extracted_once_into_a_cache_named_by_its_hash(
    plugin_dir: Path, tmp_path: Path
) -> None:
    path = make_wheel(plugin_dir / "hand.whl", HAND)
    read = read_plugin_file(path)
    archive, info = read_wheel(read)
    cache = tmp_path / "cache"
    root = extract_wheel(read, archive, cache)
    assert root == cache / read.digest
    assert (root / "wf_hand" / "__init__.py").is_file()
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    marker = root / "marker"
    marker.write_text("kept")
    assert extract_wheel(read, archive, cache) == root
    assert marker.exists()  # reused, not extracted again
    assert [c for c in cache.iterdir() if c.name.startswith(".")] == []
    (ep,) = info.entry_points
    first = WheelImporter(root).load(ep)
    second = WheelImporter(root).load(ep)
    assert first.module_root != second.module_root


def test_a_wheel_entry_point_naming_a_missing_module_is_a_clear_failure(
    plugin_dir: Path, tmp_path: Path
) -> None:
    path = make_wheel(
        plugin_dir / "hand.whl", HAND, entry_points="[waterflow.nodes]\nhand = wf_missing\n"
    )
    report = reloader_for(plugin_dir, tmp_path).rescan(installed=False)
    assert [p.message for p in report.problems] == [
        f"{path}: the wheel has no module 'wf_missing' (no wf_missing/__init__.py)"
    ]


def test_a_wheel_with_two_entry_points_shares_one_import(plugin_dir: Path, tmp_path: Path) -> None:
    files = {
        "wf_two/__init__.py": "",
        "wf_two/a.py": PLUGIN.replace("NAME", "two/a"),
        "wf_two/b.py": PLUGIN.replace("NAME", "two/b"),
    }
    make_wheel(
        plugin_dir / "two.whl",
        files,
        name="waterflow-nodes-two",
        entry_points="[waterflow.nodes]\ntwo-a = wf_two.a\ntwo-b = wf_two.b\n",
    )
    reloader = reloader_for(plugin_dir, tmp_path)
    report = reloader.rescan(installed=False)
    assert report.problems == ()
    assert sorted(report.added) == ["two-a", "two-b"]
    a, b = reloader.registry.get("two/a"), reloader.registry.get("two/b")
    assert a is not None and b is not None
    assert a.factory.__module__.rpartition(".")[0] == b.factory.__module__.rpartition(".")[0]


@pytest.fixture(autouse=True)
def _no_leaked_plugin_modules() -> Iterator[None]:
    before = {n for n in sys.modules if n.startswith("waterflow_plugin_")}
    yield
    for name in [n for n in list(sys.modules) if n.startswith("waterflow_plugin_")]:
        if name not in before:
            sys.modules.pop(name, None)


def test_a_plugin_name_that_is_not_a_regular_file_is_refused_without_blocking(
    plugin_dir: Path,
) -> None:
    fifo = plugin_dir / "pipe.py"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(PluginFileError) as info:
        read_plugin_file(fifo)  # a FIFO: opening it must not wait for a writer
    assert str(info.value) == f"plugin file {fifo} is not a regular file"
    (plugin_dir / "dir.py").mkdir(mode=0o755)
    with pytest.raises(PluginFileError, match=r"dir\.py is not a regular file$"):
        read_plugin_file(plugin_dir / "dir.py")


def test_a_wheel_whose_metadata_names_nothing_is_refused(plugin_dir: Path) -> None:
    path = plugin_dir / "anon.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("anon-1.dist-info/METADATA", "Metadata-Version: 2.1\n")
        archive.writestr(
            "anon-1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    path.chmod(0o644)
    assert wheel_error(path) == f"{path}: anon-1.dist-info/METADATA gives no Name and Version"


def test_an_untrusted_wheel_cache_is_refused(plugin_dir: Path, tmp_path: Path) -> None:
    path = make_wheel(plugin_dir / "hand.whl", HAND)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    reloader = PluginReloader(NodeRegistry(), plugin_dir=plugin_dir, cache_dir=cache, log=False)
    (problem,) = reloader.rescan(installed=False).problems
    assert problem.message == (
        f"plugin cache directory {cache} is writable by group and others (mode 0777); refusing "
        f"to load plugins from it: chmod go-w {cache}"
    )
    assert str(path) in str(problem)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    full.update(env)
    return subprocess.run(
        [str(BIN / "waterflow-agent"), "plugins", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_plugins_list_shows_source_version_and_nodes(plugin_dir: Path, tmp_path: Path) -> None:
    module = write(
        plugin_dir / "custom" / "greet.py", '__version__ = "0.3"\n' + plugin_source("greet/hi")
    )
    wheel = make_wheel(plugin_dir / "hand.whl", HAND)
    write(plugin_dir / "bad.py", "def broken(:\n")
    env = {
        "WATERFLOW_AGENT_PLUGIN_DIR": str(plugin_dir),
        "WATERFLOW_LOAD_PLUGINS": "greet,hand,bad",
    }
    proc = _cli("list", **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"greet  0.3  (file {module})",
        "    nodes: greet/hi",
        f"hand  0.5  (wheel {wheel} (waterflow-nodes-hand))",
        "    nodes: hand/node",
    ]
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith(f"warning: plugin 'bad' ({plugin_dir / 'bad.py'} ")
    assert warning.endswith("SyntaxError: invalid syntax (bad.py, line 1)")
    rows = json.loads(_cli("list", "--json", **env).stdout)
    assert [(r["name"], r["kind"], r["version"], r["nodes"]) for r in rows] == [
        ("greet", "module file", "0.3", ["greet/hi"]),
        ("hand", "wheel", "0.5", ["hand/node"]),
    ]
    empty = _cli(
        "list", WATERFLOW_AGENT_PLUGIN_DIR=str(tmp_path / "none"), WATERFLOW_LOAD_PLUGINS=""
    )
    assert empty.stdout.strip() == (
        f"no plugins (install a node package, or put one in {tmp_path / 'none'} or its core/ "
        "and custom/)"
    )


def test_the_plugins_commands_say_what_is_wrong_with_the_configuration(tmp_path: Path) -> None:
    for command in ("list", "reload"):
        proc = _cli(command, "--config", str(tmp_path / "missing.yaml"))
        assert proc.returncode == 1
        assert proc.stderr == f"error: config file {tmp_path / 'missing.yaml'} not found\n"
