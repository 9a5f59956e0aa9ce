"""App bundles: what `lamina deploy` uploads, and how the platform checks and unpacks one.

A bundle is a gzipped tar of the app folder, without `.lamina/`, `.venv/`, `__pycache__/`
and `.git/`. `make_bundle` writes it deterministically (sorted members, zeroed times and
owners), so the same files always make the same bytes and the same SHA-256: the content
address the platform stores it under.

`unpack_bundle` refuses, before writing anything, a bundle that is larger than allowed
unpacked, and any member that could land outside the destination: an absolute path, a `..`
component, a symbolic or hard link whose target leads outside, or a device or FIFO. The
stdlib's `data` extraction filter then applies as a second line of defence.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path

from lamina.errors import BundleRejected

__all__ = [
    "EXCLUDED",
    "bundle_digest",
    "check_members",
    "make_bundle",
    "tree_hash",
    "unpack_bundle",
]

UNPACKED_FACTOR = 4  # unpacked, a bundle may hold at most this many times its upload limit
EXCLUDED = frozenset({".lamina", ".venv", "__pycache__", ".git"})  # folder names left out


def bundle_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    """Files, folders and links under `root`, sorted, without the excluded folders."""
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name in EXCLUDED or entry.name.endswith(".pyc"):
            continue
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)


def make_bundle(app_dir: Path) -> bytes:
    """The gzipped tar of `app_dir` that `lamina deploy` uploads (same files, same bytes)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _walk(app_dir):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(app_dir).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def check_members(members: list[tarfile.TarInfo], max_unpacked_bytes: int) -> None:
    """Raise BundleRejected naming the first unsafe member, or when the files add up to
    more than `max_unpacked_bytes`."""
    total = 0
    for member in members:
        name = member.name
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise BundleRejected("absolute paths are not allowed", member=name)
        parts = Path(name).parts
        if ".." in parts:
            raise BundleRejected("'..' in a path is not allowed", member=name)
        if member.issym() or member.islnk():
            link = member.linkname
            base = posixpath.dirname(name) if member.issym() else ""
            landed = posixpath.normpath(posixpath.join(base, link))
            if link.startswith("/") or landed == ".." or landed.startswith("../"):
                raise BundleRejected(f"link to {link!r} leads outside the bundle", member=name)
        elif not (member.isfile() or member.isdir()):
            raise BundleRejected("only files, folders and links are allowed", member=name)
        total += member.size if member.isfile() else 0
        if total > max_unpacked_bytes:
            raise BundleRejected(
                f"unpacked, the bundle is larger than {max_unpacked_bytes // (1024 * 1024)} MB",
                too_large=True,
            )


def unpack_bundle(data: bytes, dest: Path, max_unpacked_bytes: int) -> None:
    """Check the gzipped tar `data` (see `check_members`) and unpack it into `dest`, a new
    folder. Raises BundleRejected for a bundle that is not a gzipped tar or is unsafe."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
            check_members(members, max_unpacked_bytes)
            dest.mkdir(parents=True)
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise BundleRejected(str(exc), member=exc.tarinfo.name) from None
        raise BundleRejected(f"not a readable .tar.gz archive: {exc}") from None


def tree_hash(folder: Path) -> str:
    """SHA-256 over the files under `folder` (their relative paths and contents, links'
    targets), without the excluded folders: what decides whether a service's code changed."""
    digest = hashlib.sha256()
    if not folder.is_dir():
        return digest.hexdigest()
    for path in _walk(folder):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} -> {os.readlink(path)}\0".encode())
        elif path.is_file():
            digest.update(f"F {rel}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(f"D {rel}\0".encode())
    return digest.hexdigest()
