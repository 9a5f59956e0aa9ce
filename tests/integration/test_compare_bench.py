"""The comparison suite (benchmarks/compare.py) measures real servers and says so truthfully:
a short run of Lamina and the floor fills the table with measured cells without errors and
draws the plots; a server whose answer is wrong is caught before it is loaded. No speed is
asserted: speed goals are benchmark figures, not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import compare  # noqa: E402
import peers  # noqa: E402
from run import free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def table_rows(markdown: str) -> list[list[str]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")][1:]  # minus the header
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in lines]


def test_quick_run_of_lamina_and_the_floor_measures_every_cell(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "compare.py"), "--quick"]
    cmd += ["--only", "lamina,uvicorn,uvicorn-logged"]
    cmd += ["--concurrency", "1,32", "--out", str(tmp_path)]  # --quick: 1 s, after 1 s warm-up
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "compare.md").read_text()
    assert done.stdout.strip().endswith(text.strip()[-200:])  # printed as well as written
    rows = table_rows(text)
    cells = {(r[0], r[1], r[2]) for r in rows}
    assert cells == {
        (server, handler, n)
        for server in (
            "bare uvicorn (floor)",
            "bare uvicorn, access log on (its default)",
            "Lamina",
        )
        for handler in ("hello", "io", "cpu")
        for n in ("1", "32")
    }
    for server, handler, n, rps, p50, p99, p999, errors, ratio in rows:
        where = f"{server} {handler} c={n}"
        assert float(rps) > 0, where
        assert 0 < float(p50) <= float(p99) <= float(p999), where
        assert errors == "0", where
        assert ratio.endswith("x"), where
        if server == "bare uvicorn (floor)":
            assert ratio == "1.00x"
        if handler == "io":  # every answer slept 20 ms: none can be faster
            assert float(p50) >= 20, where
    assert "Gateway-added latency at concurrency 1" in text
    for name in ("cdf-hello", "cdf-io", "cdf-cpu", "throughput"):
        png = tmp_path / f"compare-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_a_server_with_a_wrong_answer_is_caught_before_it_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BENCH_CPU_LOOPS", "1000")  # the floor's CPU handler runs 1000 loops
    with peers.uvicorn(free_port()) as url:
        compare.check_answers(url, 1000)
        with pytest.raises(peers.PeerError, match=r"GET /cpu answered 200 .* expected 200"):
            compare.check_answers(url, 1001)  # the work the suite asked for was not done


def test_noisy_neighbour_measures_hello_alone_and_beside_a_loaded_cpu_function() -> None:
    import run

    rows = run.neighbour(1)
    assert [name for name, *_ in rows] == [
        f"{server}: {what}"
        for server in ("bare uvicorn", "Lamina")
        for what in (
            "hello alone, 1 connection",
            "hello, 1 connection, while cpu is loaded (32 connections)",
        )
    ]
    for name, measured, ratio, note in rows:
        assert measured["rps"] > 0 and measured["errors"] == 0, name
        if "while cpu" in name:
            assert ratio.startswith("p50 ") and ratio.endswith("x of alone"), name
            served = float(note.split()[2])  # "cpu served N req/s meanwhile"
            assert served > 0, name
