"""`hashFiles()`: GitHub's algorithm over a real tree in tmp_path."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import pytest

from waterflow.expressions import evaluate, hash_files, render

TREE = {
    "package-lock.json": "lock v1",
    "src/app.py": "print('app')",
    "src/util.py": "def util(): ...",
    "src/data.txt": "data",
    "src/sub/deep.py": "deep = True",
    "src/sub/.hidden.py": "hidden",
    "docs/readme.md": "# docs",
    "a.txt": "root a",
    "b.txt": "root b",
    "c.log": "log",
    ".github/workflows/ci.yaml": "on: push",
}


def make_tree(root: Path, files: dict[str, str] = TREE) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def expected_hash(root: Path, rels: list[str]) -> str:
    """GitHub's algorithm by hand: sha256 over each file's sha256 digest, in sorted order."""
    outer = hashlib.sha256()
    for rel in sorted(rels):
        outer.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return outer.hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "ws")


SRC = ["src/app.py", "src/util.py", "src/data.txt", "src/sub/deep.py", "src/sub/.hidden.py"]

MATCHES: list[tuple[list[str], list[str]]] = [
    (["package-lock.json"], ["package-lock.json"]),
    (["**/package-lock.json"], ["package-lock.json"]),
    (["*.txt"], ["a.txt", "b.txt"]),
    (["**/*.txt"], ["a.txt", "b.txt", "src/data.txt"]),
    (["src/*.py"], ["src/app.py", "src/util.py"]),
    (["src/**/*.py"], ["src/app.py", "src/util.py", "src/sub/deep.py", "src/sub/.hidden.py"]),
    (["**/*.py", "!**/.hidden.py"], ["src/app.py", "src/util.py", "src/sub/deep.py"]),
    (["src"], SRC),  # a directory brings everything under it
    (["src/"], SRC),
    (["src/**"], SRC),
    (["src", "!src/sub"], ["src/app.py", "src/util.py", "src/data.txt"]),
    (["src/**/*", "!src/sub/**", "src/sub/deep.py"], [*SRC[:3], "src/sub/deep.py"]),
    (["!src/app.py", "src/*.py"], ["src/app.py", "src/util.py"]),  # order matters: last wins
    (["?.txt"], ["a.txt", "b.txt"]),
    (["[a].txt"], ["a.txt"]),
    (["[!a].txt"], ["b.txt"]),
    (["*.{txt,log}"], []),  # no brace expansion
    (["./a.txt"], ["a.txt"]),
    (["src/../a.txt"], ["a.txt"]),
    (["src/sub/deep.py\n# a comment\n\n  docs/*.md  "], ["src/sub/deep.py", "docs/readme.md"]),
    (["a.txt", "a.txt", "*.txt"], ["a.txt", "b.txt"]),  # each file once
    ([".github/**/*.yaml"], [".github/workflows/ci.yaml"]),
    (["*"], list(TREE)),  # `*` matches dot-directories too, and takes what is under them
    (["**"], list(TREE)),
    (["!**"], []),
    (["src/sub/.hidden.py/"], []),  # a trailing '/' only matches directories
    (["nothing/here/*.py"], []),
    (["../outside.txt"], []),
    (["/etc/passwd"], []),
    (["", "   ", "# only a comment"], []),
]  # fmt: skip


@pytest.mark.parametrize(("patterns", "files"), MATCHES, ids=[str(c[0]) for c in MATCHES])
def test_patterns_select_files(tree: Path, patterns: list[str], files: list[str]) -> None:
    expected = expected_hash(tree, files) if files else ""
    assert hash_files(str(tree), patterns) == expected


def test_absolute_patterns_inside_the_workspace(tree: Path) -> None:
    assert hash_files(str(tree), [f"{tree}/src/*.py"]) == expected_hash(
        tree, ["src/app.py", "src/util.py"]
    )


def test_same_files_same_hash_anywhere(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one")
    second = make_tree(tmp_path / "two")
    assert hash_files(str(first), ["**/*.py"]) == hash_files(str(second), ["**/*.py"])
    assert hash_files(str(first), ["**/*.py"]) == hash_files(str(first), ["**/*.py"])
    assert len(hash_files(str(first), ["**/*.py"])) == 64


def test_a_change_changes_the_hash(tree: Path) -> None:
    before = hash_files(str(tree), ["**/*.py"])
    (tree / "src/util.py").write_text("def util(): return 1")
    assert hash_files(str(tree), ["**/*.py"]) != before
    changed = hash_files(str(tree), ["**/*.py"])
    (tree / "src/new.py").write_text("")
    assert hash_files(str(tree), ["**/*.py"]) != changed


def test_only_contents_count_not_names(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", {"a.txt": "x", "b.txt": "y"})
    two = make_tree(tmp_path / "two", {"c.txt": "x", "d.txt": "y"})
    assert hash_files(str(one), ["*.txt"]) == hash_files(str(two), ["*.txt"])


def test_no_match_is_empty(tree: Path, tmp_path: Path) -> None:
    assert hash_files(str(tree), ["**/*.rs"]) == ""
    assert hash_files(str(tmp_path / "missing"), ["**"]) == ""
    empty = tmp_path / "empty"
    (empty / "just" / "dirs").mkdir(parents=True)
    assert hash_files(str(empty), ["**"]) == ""


def test_large_files_are_read_in_chunks(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * (1 << 20) + 17))
    assert hash_files(str(tmp_path), ["big.bin"]) == expected_hash(tmp_path, ["big.bin"])


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symbolic_links_are_followed_once(tree: Path) -> None:
    (tree / "link.txt").symlink_to(tree / "a.txt")
    (tree / "src" / "loop").symlink_to(tree / "src", target_is_directory=True)
    (tree / "alias").symlink_to(tree / "src", target_is_directory=True)
    (tree / "broken.txt").symlink_to(tree / "nowhere")
    assert hash_files(str(tree), ["link.txt"]) == expected_hash(tree, ["a.txt"])
    # the loop is not walked into forever; its files are reached through the real path
    assert hash_files(str(tree), ["src/*.py"]) == expected_hash(tree, ["src/app.py", "src/util.py"])
    assert hash_files(str(tree), ["alias/*.py"]) == expected_hash(
        tree, ["src/app.py", "src/util.py"]
    )
    assert hash_files(str(tree), ["**/*.txt"]) == expected_hash(
        tree, ["a.txt", "alias/data.txt", "b.txt", "link.txt", "src/data.txt"]
    )


def test_hash_files_through_the_evaluator(tree: Path) -> None:
    bound = functools.partial(hash_files, str(tree))
    key = render("deps-${{ hashFiles('**/package-lock.json') }}", {}, hash_files=bound)
    assert key == "deps-" + expected_hash(tree, ["package-lock.json"])
    assert evaluate("hashFiles('src/*.py', '!src/app.py')", {}, hash_files=bound) == (
        expected_hash(tree, ["src/util.py"])
    )
    assert evaluate("hashFiles('*.nothing') == ''", {}, hash_files=bound) is True
