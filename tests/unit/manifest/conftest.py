"""Fixtures for manifest tests: an app folder in tmp_path and helpers that parse YAML text."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.errors import ManifestError
from lamina.manifest import AppSpec, parse_app

Parse = Callable[[str], AppSpec]
Fail = Callable[[str], ManifestError]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An app folder with the code the manifests in these tests point at."""
    (tmp_path / "services" / "users").mkdir(parents=True)
    (tmp_path / "services" / "users" / "handlers.py").write_text("def signup(e, c): ...\n")
    (tmp_path / "services" / "orders" / "app").mkdir(parents=True)
    (tmp_path / "services" / "orders" / "app" / "__init__.py").write_text("")
    return tmp_path


@pytest.fixture
def parse(root: Path) -> Parse:
    """Parse dedented manifest text for the app in `root`."""
    return lambda text: parse_app(textwrap.dedent(text), root=root)


@pytest.fixture
def fail(parse: Parse) -> Fail:
    """Parse text that must be invalid and return the ManifestError it raised."""

    def run(text: str) -> ManifestError:
        with pytest.raises(ManifestError) as info:
            parse(text)
        return info.value

    return run
