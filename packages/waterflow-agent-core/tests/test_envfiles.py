"""The env-file protocol: parsing GITHUB_OUTPUT/ENV/STATE/PATH as GitHub runners do."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waterflow.envfiles import (
    EnvFileError,
    EnvFileResult,
    create_env_files,
    parse_env_file,
    parse_path_file,
    read_env_files,
    remove_env_files,
)


def parse(text: str) -> dict[str, str]:
    return parse_env_file(text, file_label="GITHUB_OUTPUT")


def parse_error(text: str) -> str:
    with pytest.raises(EnvFileError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_name_value_lines() -> None:
    assert parse("a=1\nb=two words\n") == {"a": "1", "b": "two words"}


def test_value_keeps_everything_after_the_first_equals_sign() -> None:
    assert parse("url=https://x?a=b&c=d\nempty=\n") == {"url": "https://x?a=b&c=d", "empty": ""}


def test_names_and_values_are_not_trimmed() -> None:
    assert parse("a = 1 \n") == {"a ": " 1 "}


def test_empty_lines_are_ignored_and_later_assignments_win() -> None:
    assert parse("\na=1\n\n\na=2\n") == {"a": "2"}


def test_last_line_without_newline_counts() -> None:
    assert parse("a=1\nb=2") == {"a": "1", "b": "2"}


def test_empty_text() -> None:
    assert parse("") == {}


def test_heredoc_multiline_value() -> None:
    text = "notes<<EOF\nline one\n\nline three\nEOF\nafter=1\n"
    assert parse(text) == {"notes": "line one\n\nline three", "after": "1"}


def test_heredoc_value_may_hold_assignment_like_lines() -> None:
    text = "v<<END\nx=1\ny<<EOF\nEOF\nEND\n"
    assert parse(text) == {"v": "x=1\ny<<EOF\nEOF"}


def test_heredoc_with_empty_value() -> None:
    assert parse("v<<EOF\nEOF\n") == {"v": ""}


def test_heredoc_delimiter_as_last_line_without_newline() -> None:
    assert parse("v<<EOF\nhello\nEOF") == {"v": "hello"}


def test_heredoc_delimiter_must_match_exactly() -> None:
    message = parse_error("v<<EOF\nhello\n EOF\nEOF \n")
    assert message == (
        "GITHUB_OUTPUT line 1: heredoc 'EOF' for 'v' is never closed; end it with a line 'EOF'"
    )


def test_whichever_of_equals_and_heredoc_comes_first_decides() -> None:
    assert parse("a=x<<y\n") == {"a": "x<<y"}
    assert parse("b<<E=1\nvalue\nE=1\n") == {"b": "value"}


def test_crlf_line_ends_are_accepted() -> None:
    text = "a=1\r\nnotes<<EOF\r\none\r\ntwo\r\nEOF\r\n\r\nb=2\r\n"
    assert parse(text) == {"a": "1", "notes": "one\ntwo", "b": "2"}


def test_unterminated_heredoc_names_file_line_and_fix() -> None:
    message = parse_error("a=1\n\nnotes<<EOF\nsome\nlines\n")
    assert message == (
        "GITHUB_OUTPUT line 3: heredoc 'EOF' for 'notes' is never closed; end it with a line 'EOF'"
    )


def test_line_without_assignment() -> None:
    message = parse_error("a=1\nhello world\n")
    assert message.startswith("GITHUB_OUTPUT line 2: 'hello world' is neither NAME=value nor")


def test_long_bad_line_is_shortened_in_the_message() -> None:
    message = parse_error("x" * 500 + "\n")
    assert len(message) < 200
    assert "..." in message


def test_empty_name() -> None:
    assert parse_error("=value\n").startswith("GITHUB_OUTPUT line 1: '=value' has no name")
    assert parse_error("ok=1\n<<EOF\nx\nEOF\n").startswith(
        "GITHUB_OUTPUT line 2: '<<EOF' has no name before '<<'"
    )


def test_empty_delimiter() -> None:
    message = parse_error("notes<<\nx\n")
    assert message.startswith("GITHUB_OUTPUT line 1: heredoc for 'notes' has no delimiter")


def test_error_carries_label_and_line() -> None:
    with pytest.raises(EnvFileError) as info:
        parse_env_file("a=1\nbad\n", file_label="GITHUB_ENV")
    assert info.value.file_label == "GITHUB_ENV"
    assert info.value.line == 2
    assert str(info.value).startswith("GITHUB_ENV line 2:")


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="=<\n\r"), min_size=1, max_size=20
)
value_lines = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=30),
    max_size=6,
)


@given(name=names, lines=value_lines)
def test_heredoc_round_trip(name: str, lines: list[str]) -> None:
    delimiter = "ghadelimiter_0d9a"
    lines = [line for line in lines if line != delimiter]
    text = f"{name}<<{delimiter}\n" + "".join(f"{line}\n" for line in lines) + f"{delimiter}\n"
    assert parse(text) == {name: "\n".join(lines)}


def test_path_file() -> None:
    text = "/opt/a/bin\n\n  /opt/b bin  \r\n/opt/c\n"
    assert parse_path_file(text) == ["/opt/a/bin", "/opt/b bin", "/opt/c"]
    assert parse_path_file("") == []


def test_create_env_files(tmp_path: Path) -> None:
    directory = tmp_path / "step" / "files"
    files = create_env_files(directory)
    paths = [files.output, files.env, files.path, files.state, files.step_summary]
    assert len(set(paths)) == 5
    for path in paths:
        assert path.parent == directory
        assert path.read_bytes() == b""
    files.output.write_text("a=1\n")
    again = create_env_files(directory)
    assert again == files
    assert files.output.read_bytes() == b""


def test_steps_of_a_job_share_a_folder_of_env_files_each_with_its_own(tmp_path: Path) -> None:
    first = create_env_files(tmp_path / "cmds", "_a")
    second = create_env_files(tmp_path / "cmds", "_b")
    assert first.output.parent == second.output.parent == tmp_path / "cmds"
    assert first.step_summary.name == "step_summary_a.md"
    assert {first.output, first.env, first.path, first.state} & {second.output, second.env} == set()
    first.output.write_text("a=1\n")
    remove_env_files(first)
    assert not any(p.exists() for p in (first.output, first.env, first.step_summary))
    assert second.output.exists() and second.state.exists()
    remove_env_files(first)  # already gone: nothing to do
    second.env.unlink()  # a step removed one of its files: reading and removing still work
    assert read_env_files(second).env == {}
    remove_env_files(second)
    assert list((tmp_path / "cmds").iterdir()) == []


def test_create_env_files_environment(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    environment = files.as_environment()
    assert environment["GITHUB_OUTPUT"] == environment["WATERFLOW_OUTPUT"] == str(files.output)
    assert environment["GITHUB_STEP_SUMMARY"] == str(files.step_summary)


def test_read_env_files(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    files.output.write_text("greeting=hello\nnotes<<EOF\none\ntwo\nEOF\n")
    files.env.write_text("MY_VAR=abc\n")
    files.path.write_text("/opt/tools/bin\n")
    files.state.write_text("pid=42\n")
    files.step_summary.write_text("### Done\n")
    assert read_env_files(files) == EnvFileResult(
        outputs={"greeting": "hello", "notes": "one\ntwo"},
        env={"MY_VAR": "abc"},
        path=["/opt/tools/bin"],
        state={"pid": "42"},
        summary="### Done\n",
    )


def test_read_env_files_empty_and_missing(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    files.output.unlink()
    files.step_summary.unlink()
    assert read_env_files(files) == EnvFileResult(outputs={}, env={}, path=[], state={}, summary="")


def test_read_env_files_tolerates_bom_and_bad_bytes(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    files.env.write_bytes(b"\xef\xbb\xbfA=caf\xe9\n")
    assert read_env_files(files).env == {"A": "caf\ufffd"}


def test_read_env_files_names_the_malformed_file(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    files.env.write_text("A=1\nB<<EOF\nnever closed\n")
    with pytest.raises(EnvFileError, match=r"^GITHUB_ENV line 2: heredoc 'EOF' for 'B' is never"):
        read_env_files(files)


def test_read_env_files_unreadable_file_is_one_line(tmp_path: Path) -> None:
    files = create_env_files(tmp_path)
    files.state.unlink()
    files.state.mkdir()
    with pytest.raises(EnvFileError) as info:
        read_env_files(files)
    message = str(info.value)
    assert message.startswith("GITHUB_STATE: cannot read ")
    assert "\n" not in message
