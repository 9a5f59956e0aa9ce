"""Parse YAML into plain data plus a map from dotted key path to 1-based line number.

The document is composed into nodes with `yaml.SafeLoader`, so every value keeps the mark of
where it was written; paths look like `services.users.functions.signup.timeout` and
`events[1].http`. Mapping keys stay the text that was written (`on:` is the key "on", not
True); scalar values get YAML's usual types (int, float, bool, None, str, dates).
"""

from __future__ import annotations

from typing import Any

import yaml

from lamina.errors import ManifestError

__all__ = ["Lines", "child", "load_yaml", "parent"]

Lines = dict[str, int]  # dotted key path -> 1-based line of the node it names


def child(path: str, key: str | int) -> str:
    """The path of mapping key `key` (str) or list item `key` (int) under `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parent(path: str) -> str:
    """The path one level up: `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> ``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def load_yaml(text: str, file: str, walker: type[_Walker] | None = None) -> tuple[Any, Lines]:
    """Return (data, lines) for `text`; raise ManifestError for syntax errors and duplicate keys.
    `walker` turns nodes into values (default `_Walker`; CloudFormation's tags need their own)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: Lines = {"": node.start_mark.line + 1}
        return (walker or _Walker)(loader, file, lines).value(node, ""), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # PyYAML's context reads as a lead-in: "while parsing a flow mapping, expected ','".
        said = ", ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise ManifestError(
            f"invalid YAML: {said}{_hint(exc)}",
            file=file,
            line=None if mark is None else mark.line + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _hint(exc: yaml.MarkedYAMLError) -> str:
    """Advice for the syntax error everyone meets: `{id}` or `?` inside a `{...}` mapping."""
    if exc.context in ("while parsing a flow mapping", "while parsing a flow sequence"):
        return (
            "; inside {...} or [...], quote values that contain braces, brackets, ',' or '?', "
            'e.g. {route: "GET /users/{id}"}'
        )
    return ""


class _Walker:
    """Turns composed nodes into plain data, recording each path's line on the way."""

    def __init__(self, loader: yaml.SafeLoader, file: str, lines: Lines) -> None:
        self._loader = loader
        self._file = file
        self._lines = lines

    def value(self, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                item_path = child(path, index)
                self._lines[item_path] = item.start_mark.line + 1
                items.append(self.value(item, item_path))
            return items
        return self._loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ManifestError(
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    file=self._file,
                    path=path,
                    line=line,
                )
            seen[key] = line
        self._loader.flatten_mapping(node)  # resolves `<<: *anchor` merges in place
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            key_path = child(path, key)
            # A scalar's own line; a nested block starts on the line of its key.
            at = value_node if isinstance(value_node, yaml.ScalarNode) else key_node
            self._lines[key_path] = at.start_mark.line + 1
            result[key] = self.value(value_node, key_path)
        return result

    def _key(self, node: yaml.Node, path: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise ManifestError(
                "expected a plain key, got a list or mapping as a key",
                file=self._file,
                path=path,
                line=node.start_mark.line + 1,
            )
        return str(node.value)
