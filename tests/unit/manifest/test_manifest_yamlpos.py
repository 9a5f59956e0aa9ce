"""The YAML reader keeps a line for every key path, keeps keys as written and rejects repeats."""

from __future__ import annotations

import pytest

from lamina.errors import ManifestError
from lamina.manifest._yamlpos import load_yaml, parent

TEXT = """\
app: shop
services:
  users:
    functions:
      signup:
        timeout:
          5
        events:
          - http: POST /a
          - {queue: q}
"""


def test_every_key_path_maps_to_the_line_it_was_written_on() -> None:
    data, lines = load_yaml(TEXT, "lamina.yaml")
    fn = "services.users.functions.signup"
    assert data["services"]["users"]["functions"]["signup"]["timeout"] == 5
    assert lines == {
        "": 1,
        "app": 1,
        "services": 2,
        "services.users": 3,
        "services.users.functions": 4,
        fn: 5,
        f"{fn}.timeout": 7,  # a scalar's own line, not its key's
        f"{fn}.events": 8,
        f"{fn}.events[0]": 9,
        f"{fn}.events[0].http": 9,
        f"{fn}.events[1]": 10,
        f"{fn}.events[1].queue": 10,
    }


def test_keys_stay_the_text_that_was_written() -> None:
    data, _ = load_yaml("on: 1\n2: two\nnull: x\n", "lamina.yaml")
    assert data == {"on": 1, "2": "two", "null": "x"}


def test_a_key_repeated_in_a_flow_mapping_is_an_error() -> None:
    with pytest.raises(ManifestError) as info:
        load_yaml("a:\n  b: {c: 1,\n      c: 2}\n", "x.yaml")
    assert str(info.value) == "x.yaml:3: a.b: duplicate key 'c' (first at line 2)"


def test_a_list_or_mapping_used_as_a_key_is_an_error() -> None:
    with pytest.raises(ManifestError, match="expected a plain key"):
        load_yaml("? [a, b]\n: 1\n", "x.yaml")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("a.b[2]", "a.b", id="a list item's parent is the list"),
        pytest.param("a.b", "a", id="a key's parent is its mapping"),
        pytest.param("a", "", id="a top-level key's parent is the document"),
        pytest.param("a[0].b", "a[0]", id="a key inside a list item has the item as parent"),
    ],
)
def test_parent_drops_the_last_key_or_index(path: str, expected: str) -> None:
    assert parent(path) == expected
