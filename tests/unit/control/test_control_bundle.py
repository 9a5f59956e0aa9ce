"""App bundles: what `lamina deploy` packs, and what the platform refuses to unpack."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from lamina.control.bundle import make_bundle, tree_hash, unpack_bundle
from lamina.errors import BundleRejected

MB = 1024 * 1024


def _app(root: Path) -> Path:
    (root / "services" / "orders").mkdir(parents=True)
    (root / "services" / "orders" / "handlers.py").write_text("def h(e, c):\n    return 1\n")
    (root / "lamina.yaml").write_text("app: shop\n")
    for junk in (".lamina", ".venv/lib", ".git", "services/orders/__pycache__"):
        (root / junk).mkdir(parents=True)
        (root / junk / "x").write_text("not shipped")
    return root


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x = 1\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def test_a_bundle_holds_the_app_without_state_venv_caches_or_git(tmp_path: Path) -> None:
    root = _app(tmp_path / "app")
    data = make_bundle(root)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = sorted(tar.getnames())
    assert names == ["lamina.yaml", "services", "services/orders", "services/orders/handlers.py"]


def test_the_same_files_make_the_same_bytes(tmp_path: Path) -> None:
    root = _app(tmp_path / "app")
    first = make_bundle(root)
    (root / "lamina.yaml").touch()  # a newer mtime only
    assert make_bundle(root) == first
    (root / "lamina.yaml").write_text("app: shop2\n")
    assert make_bundle(root) != first


def test_a_bundle_unpacks_to_the_same_files(tmp_path: Path) -> None:
    root = _app(tmp_path / "app")
    unpack_bundle(make_bundle(root), tmp_path / "out", 10 * MB)
    assert (tmp_path / "out" / "services/orders/handlers.py").read_text().startswith("def h")
    assert tree_hash(tmp_path / "out" / "services/orders") == tree_hash(root / "services/orders")


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_file("../evil.py"), "bundle member '../evil.py': '..' in a path is not allowed"),
        (
            _file("services/../../evil.py"),
            "bundle member 'services/../../evil.py': '..' in a path is not allowed",
        ),
        (_file("/etc/cron.d/evil"), "bundle member '/etc/cron.d/evil': absolute paths are"),
        (
            _link("services/orders/passwd", "/etc/passwd"),
            "bundle member 'services/orders/passwd': link to '/etc/passwd' leads outside",
        ),
        (
            _link("services/orders/up", "../../../outside"),
            "bundle member 'services/orders/up': link to '../../../outside' leads outside",
        ),
        (
            _link("hard", "../outside", tarfile.LNKTYPE),
            "bundle member 'hard': link to '../outside' leads outside",
        ),
        (
            _link("dev", "", tarfile.CHRTYPE),
            "bundle member 'dev': only files, folders and links are allowed",
        ),
    ],
    ids=[
        "a parent path is refused",
        "a parent path inside a folder is refused",
        "an absolute path is refused",
        "a symlink to an absolute path is refused",
        "a symlink climbing out of the root is refused",
        "a hard link outside the root is refused",
        "a device is refused",
    ],
)
def test_unsafe_members_are_refused_before_anything_is_written(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], message: str
) -> None:
    data = _tar(_file("lamina.yaml", b"app: a\n"), member)
    with pytest.raises(BundleRejected) as caught:
        unpack_bundle(data, tmp_path / "out", 10 * MB)
    assert str(caught.value).startswith(message)
    assert not caught.value.too_large
    assert not (tmp_path / "out").exists()


def test_a_link_that_stays_inside_the_bundle_is_kept(tmp_path: Path) -> None:
    data = _tar(_file("shared/util.py"), _link("services/util.py", "../shared/util.py"))
    unpack_bundle(data, tmp_path / "out", 10 * MB)
    assert (tmp_path / "out" / "services" / "util.py").read_text() == "x = 1\n"


def test_a_bundle_too_large_unpacked_is_refused_as_too_large(tmp_path: Path) -> None:
    data = _tar(_file("a.bin", b"\0" * 3000), _file("b.bin", b"\0" * 3000))  # compresses well
    assert len(data) < 1000
    with pytest.raises(BundleRejected) as caught:
        unpack_bundle(data, tmp_path / "out", 5000)
    assert caught.value.too_large
    assert "larger than" in str(caught.value)


def test_something_else_than_a_tar_gz_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleRejected) as caught:
        unpack_bundle(b"PK\x03\x04 not a tar", tmp_path / "out", MB)
    assert str(caught.value).startswith("not a readable .tar.gz archive")


def test_the_code_hash_follows_content_not_times(tmp_path: Path) -> None:
    root = _app(tmp_path / "app")
    folder = root / "services" / "orders"
    before = tree_hash(folder)
    (folder / "handlers.py").touch()
    (folder / "__pycache__" / "handlers.cpython-311.pyc").write_bytes(b"cache")
    assert tree_hash(folder) == before
    (folder / "handlers.py").write_text("def h(e, c):\n    return 2\n")
    assert tree_hash(folder) != before
