"""The cache key of services' environments, the files it covers, and where the cache lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.control.venvs import (
    ServiceVenvs,
    default_venv_dir,
    requirement_files,
    services_using,
    venv_key,
)
from lamina.manifest import AppSpec, ServiceSpec

TAG = "cpython-3.11.7-linux-x86_64:/usr/bin/python3.11"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_same_requirements_in_two_folders_share_one_environment(tmp_path: Path) -> None:
    a = _write(tmp_path / "a" / "requirements.txt", "six==1.16.0\n")
    b = _write(tmp_path / "b" / "requirements.txt", "six==1.16.0\n")
    assert venv_key(a, TAG) == venv_key(b, TAG)
    assert len(venv_key(a, TAG)) == 24


def test_another_pin_or_another_python_is_another_environment(tmp_path: Path) -> None:
    a = _write(tmp_path / "a" / "requirements.txt", "six==1.16.0\n")
    b = _write(tmp_path / "b" / "requirements.txt", "six==1.15.0\n")
    assert venv_key(a, TAG) != venv_key(b, TAG)
    assert venv_key(a, TAG) != venv_key(a, TAG.replace("3.11.7", "3.12.1"))
    assert venv_key(a, TAG) != venv_key(a, TAG.replace("x86_64", "aarch64"))


def test_an_edit_to_an_included_file_changes_the_key(tmp_path: Path) -> None:
    main = _write(tmp_path / "svc" / "requirements.txt", "-r ../common/base.txt\nsix\n")
    base = _write(tmp_path / "common" / "base.txt", "attrs==23.1.0\n")
    before = venv_key(main, TAG)
    base.write_text("attrs==23.2.0\n")
    assert venv_key(main, TAG) != before


def test_includes_are_followed_in_every_spelling_and_only_once(tmp_path: Path) -> None:
    main = _write(
        tmp_path / "requirements.txt",
        "# comment\n-r base.txt\n--requirement=more/dev.txt\n-c constraints.txt\nsix\n",
    )
    base = _write(tmp_path / "base.txt", "--requirement requirements.txt\n")  # a cycle
    dev = _write(tmp_path / "more" / "dev.txt", "-r ../base.txt\n")
    constraints = _write(tmp_path / "constraints.txt", "six<2\n")
    assert requirement_files(main) == [main, base, dev, constraints]


def test_a_missing_include_still_gives_a_key_the_installer_then_reports(tmp_path: Path) -> None:
    main = _write(tmp_path / "requirements.txt", "-r nowhere.txt\n")
    assert requirement_files(main) == [main, tmp_path / "nowhere.txt"]
    assert venv_key(main, TAG) != venv_key(_write(tmp_path / "x.txt", "\n"), TAG)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LAMINA_VENV_DIR": "/data/venvs", "XDG_CACHE_HOME": "/c"}, "/data/venvs"),
        ({"XDG_CACHE_HOME": "/c"}, "/c/lamina/venvs"),
        ({}, str(Path.home() / ".cache" / "lamina" / "venvs")),
    ],
    ids=["LAMINA_VENV_DIR wins", "then XDG_CACHE_HOME", "else ~/.cache"],
)
def test_the_cache_folder(environ: dict[str, str], expected: str) -> None:
    assert default_venv_dir(environ) == Path(expected)


def test_a_shared_included_file_belongs_to_every_service_using_it(tmp_path: Path) -> None:
    base = _write(tmp_path / "common.txt", "six\n")
    a = _write(tmp_path / "a" / "requirements.txt", "-r ../common.txt\n")
    b = _write(tmp_path / "b" / "requirements.txt", "-r ../common.txt\nattrs\n")
    app = AppSpec(
        name="shop",
        root=tmp_path,
        file=tmp_path / "lamina.yaml",
        services={
            "a": ServiceSpec(name="a", path=tmp_path / "a", requirements=a),
            "b": ServiceSpec(name="b", path=tmp_path / "b", requirements=b),
            "c": ServiceSpec(name="c", path=tmp_path / "c"),
        },
    )
    assert ServiceVenvs.files(app) == {a: ["a"], base: ["a", "b"], b: ["b"]}
    assert services_using(app, [base]) == ["a", "b"]
    assert services_using(app, [b, tmp_path / "c" / "handlers.py"]) == ["b"]
