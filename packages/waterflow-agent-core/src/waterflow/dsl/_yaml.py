"""YAML text to a tree of ruamel nodes that know where they are, and problems that say where.

The parser works on ruamel's composed nodes rather than on constructed objects: every key and
value keeps its start and end in the text, duplicate keys are all seen (not just the first),
and scalar styles are known, which is what exact columns for expression errors need.
Positions are computed from the character index of a node, so they always fall in the text.
"""

from __future__ import annotations

import bisect
import math
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.parser import Parser
from ruamel.yaml.reader import ReaderError

from waterflow.dsl._errors import Problem, quote
from waterflow.dsl.model import Pos

__all__ = [
    "MAX_DEPTH",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "Source",
    "kind_of",
]

MAX_DEPTH = 64
"""Deepest nesting accepted: deeper is a mistake or an attack, never a workflow."""

MAX_NODES = 200_000
"""Most nodes a document may expand to through aliases."""

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _MERGE, _MAP, _SEQ = (_TAG + t for t in ("timestamp", "merge", "map", "seq"))
_TRUE = {"true", "yes", "on", "y"}
_BREAK = re.compile(r"\r\n|\r|\n")
_TUPLE = re.compile(r"\(('(?:[^'\\]|\\.)*'),\)")  # ruamel writes some tokens as ('x',)


class _TooDeep(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


class _ShallowParser(Parser):
    """ruamel's parser, refusing nesting deeper than MAX_DEPTH as the composer takes each
    event: ruamel's scanner slows down quadratically with depth, and its composer recurses.
    Counting here rather than in a pass of its own reads the text once, not twice."""

    def __init__(self, loader: Any) -> None:
        super().__init__(loader)
        self._depth = 0

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _TooDeep(int(event.start_mark.index))
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            self._depth -= 1
        return event


class Source:
    """The text of one workflow file, its problems, and conversions of its nodes."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.problems: list[Problem] = []
        self._starts = [0]
        self._ends: list[int] = []
        for match in _BREAK.finditer(text):
            self._ends.append(match.start())
            self._starts.append(match.end())
        self._ends.append(len(text))
        self._values: dict[int, Any] = {}
        self._active: set[int] = set()
        self._keys: dict[int, Node] = {}

    # -- positions ---------------------------------------------------------------------

    def pos_at(self, index: int) -> Pos:
        """The 1-based line and column of character `index`, clamped into the text."""
        index = max(0, min(index, len(self.text)))
        line = bisect.bisect_right(self._starts, index) - 1
        col = min(index, self._ends[line]) - self._starts[line] + 1
        return Pos(line + 1, col)

    def pos(self, node: Node) -> Pos:
        """Where `node` starts; for an empty value (`key:` and nothing), where its key is."""
        if isinstance(node, ScalarNode) and node.value == "" and node.style is None:
            key = self._keys.get(id(node))
            if key is not None:
                return self.pos_at(start(key))
        return self.pos_at(start(node))

    def error(self, where: Node | Pos | int, message: str) -> None:
        if isinstance(where, Pos):
            pos = where
        elif isinstance(where, int):
            pos = self.pos_at(where)
        else:
            pos = self.pos(where)
        self.problems.append(Problem(self.file, pos.line, pos.col, message))

    # -- loading -----------------------------------------------------------------------

    def compose(self) -> Node | None:
        """The document's root node, or None (with a problem) when there is none."""
        yaml = YAML(typ="safe", pure=True)
        yaml.Parser = _ShallowParser
        try:
            root: Node | None = yaml.compose(self.text)
        except _TooDeep as exc:
            self.error(exc.index, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
            return None
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = exc.problem or exc.context or "malformed YAML"
            if exc.context and exc.problem and exc.problem_mark is not None:
                context = exc.context
                started = exc.context_mark
                if (
                    started is not None
                    and self.pos_at(started.index).line != self.pos_at(exc.problem_mark.index).line
                ):
                    context += f" that starts on line {self.pos_at(started.index).line}"
                what = f"{exc.problem} ({context})"
            what = _TUPLE.sub(r"\1", str(what))
            self.error(mark.index if mark is not None else 0, f"invalid YAML: {what}")
            return None
        except ReaderError as exc:
            char = exc.character
            shown = f"U+{char:04X}" if isinstance(char, int) else quote(char)
            self.error(int(exc.position or 0), f"invalid YAML: character {shown}: {exc.reason}")
            return None
        except YAMLError as exc:
            self.error(0, f"invalid YAML: {exc}")
            return None
        except RecursionError:
            self.error(0, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
            return None
        if root is None:
            self.error(0, "empty workflow: expected a mapping with 'jobs'")
            return None
        if not self._check_shape(root):
            return None
        return root

    def _check_shape(self, root: Node) -> bool:
        """Refuse documents that loop into themselves, nest too deep or expand too far."""
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(node: Node, depth: int) -> int:
            known = sizes.get(id(node))
            if known is not None:
                return known
            if id(node) in active:
                raise _Refused(node, "a recursive alias: this node contains itself")
            if depth > MAX_DEPTH:
                raise _Refused(node, f"nested more than {MAX_DEPTH} levels deep")
            active.add(id(node))
            total = 1
            if isinstance(node, MappingNode):
                for key, value in node.value:
                    total += size(key, depth + 1) + size(value, depth + 1)
            elif isinstance(node, SequenceNode):
                for item in node.value:
                    total += size(item, depth + 1)
            active.discard(id(node))
            if total > MAX_NODES:
                raise _Refused(node, f"expands to more than {MAX_NODES} values through aliases")
            sizes[id(node)] = total
            return total

        try:
            size(root, 0)
        except _Refused as refused:
            self.error(refused.node, f"invalid YAML: {refused.reason}")
            return False
        return True

    # -- values ------------------------------------------------------------------------

    def entries(self, node: MappingNode) -> list[tuple[str, Node, Node]]:
        """The mapping's (key, key node, value node), merges (`<<`) applied, duplicates
        and keys that are not scalars reported; the first of duplicate keys wins."""
        seen: dict[str, Node] = {}
        out: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merged.extend(self._merged(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, f"a key must be a string, not {kind_of(key_node)}")
                continue
            self.check_tag(key_node)
            key = str(key_node.value)
            if key in seen:
                line = self.pos(seen[key]).line
                self.error(key_node, f"duplicate key {quote(key)} (first given on line {line})")
                continue
            seen[key] = key_node
            self._keys[id(value_node)] = key_node
            out.append((key, key_node, value_node))
        for key, key_node, value_node in merged:
            if key not in seen:
                seen[key] = key_node
                out.append((key, key_node, value_node))
        return out

    def _merged(self, node: Node) -> list[tuple[str, Node, Node]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        out: list[tuple[str, Node, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self.error(source, f"a merge key ('<<') needs a mapping, not {kind_of(source)}")
                continue
            out.extend(self.entries(source))
        return out

    def scalar(self, node: ScalarNode) -> Any:
        """The value of a scalar per the YAML core schema; timestamps stay strings."""
        tag = node.tag
        text = str(node.value)
        if tag in (_STR, "!", _TIMESTAMP):
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in _TRUE
        if tag == _INT:
            return _to_int(text)
        if tag == _FLOAT:
            return _to_float(text)
        self.check_tag(node)
        return text

    def check_tag(self, node: Node) -> None:
        tag = node.tag
        known = (_STR, "!", _TIMESTAMP, _NULL, _BOOL, _INT, _FLOAT, _MAP, _SEQ, _MERGE)
        if tag not in known:
            self.error(node, f"unsupported YAML tag {quote(tag)}")

    def plain(self, node: Node) -> Any:
        """The node as plain Python data: dict, list, str, int, float, bool, None."""
        known = self._values.get(id(node))
        if known is not None or id(node) in self._values:
            return known
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self._active:  # _check_shape refuses these; never reached
            return None
        self._active.add(id(node))
        self.check_tag(node)
        value: Any
        if isinstance(node, MappingNode):
            value = {key: self.plain(v) for key, _, v in self.entries(node)}
        else:
            value = [self.plain(item) for item in node.value]
        self._active.discard(id(node))
        self._values[id(node)] = value
        return value


class _Refused(Exception):
    def __init__(self, node: Node, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


def start(node: Node) -> int:
    mark = node.start_mark
    return int(mark.index) if mark is not None else 0


def end(node: Node) -> int:
    mark = node.end_mark
    return int(mark.index) if mark is not None else start(node)


def kind_of(node: Node) -> str:
    """What a node is, for messages: 'a mapping', 'a list', 'the string 'x''..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag
    if tag == _NULL:
        return "nothing (null)"
    if tag == _BOOL:
        return f"the boolean {node.value}"
    if tag in (_INT, _FLOAT):
        return f"the number {node.value}"
    return f"the string {quote(node.value)}"


def _to_int(text: str) -> int | str:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    bases = {"0x": 16, "0o": 8, "0b": 2}
    try:
        base = bases.get(digits[:2].lower(), 10)
        return sign * int(digits[2:] if base != 10 else digits, base)
    except ValueError:
        return text


def _to_float(text: str) -> float | str:
    lowered = text.lower().replace("_", "")
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered.endswith(".nan"):
        return math.nan
    try:
        return float(lowered)
    except ValueError:
        return text
