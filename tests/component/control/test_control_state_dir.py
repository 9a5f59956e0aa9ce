"""Two control planes in one APP_DIR share its `.lamina/` folder: they end up with one admin
token even when they start at the same moment, and a stopping plane leaves the runtime file of
a plane started after it in place."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import orjson

from lamina.control.platform import _remove_runtime_file, read_token


def _token_into(state_dir: Path, out: Path, start: multiprocessing.synchronize.Event) -> None:
    start.wait(10)
    out.write_text(read_token(state_dir, None))


def test_planes_starting_together_in_one_app_dir_get_one_admin_token(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    outs = [tmp_path / f"token-{n}" for n in range(6)]
    procs = [ctx.Process(target=_token_into, args=(tmp_path, out, start)) for out in outs]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0

    tokens = {out.read_text() for out in outs}
    stored = (tmp_path / "admin-token").read_text().strip()
    assert tokens == {stored}
    assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_empty_token_file_is_replaced_by_a_new_token(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("")
    token = read_token(tmp_path, None)
    assert token and (tmp_path / "admin-token").read_text().strip() == token
    assert read_token(tmp_path, None) == token


def test_a_stopping_plane_removes_only_its_own_runtime_file(tmp_path: Path) -> None:
    runtime = tmp_path / "platform.json"
    runtime.write_bytes(orjson.dumps({"pid": os.getpid() + 1, "gateway_url": "http://b"}))
    _remove_runtime_file(runtime)
    assert runtime.exists(), "a plane started later owns it"

    runtime.write_bytes(orjson.dumps({"pid": os.getpid(), "gateway_url": "http://a"}))
    _remove_runtime_file(runtime)
    assert not runtime.exists()
