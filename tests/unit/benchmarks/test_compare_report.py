"""The comparison suite's own correctness: it reads wrk's report as wrk measured it, and its
table and derived figures say what the measurements say."""

from __future__ import annotations

import re
from pathlib import Path

import loadgen
import pytest
import report
from loadgen import Load
from report import Cell

SAMPLES = Path(__file__).parent


def wrk_summary(text: str) -> tuple[int, float, int]:
    """wrk's own text summary: requests, Requests/sec and non-2xx responses."""
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return requests, rps, int(non_2xx.group(1)) if non_2xx else 0


@pytest.mark.parametrize("sample", ["wrk_hello.txt", "wrk_404.txt"])
def test_parse_agrees_with_wrks_own_summary(sample: str) -> None:
    text = (SAMPLES / sample).read_text()
    load = loadgen.parse(text)
    requests, rps, non_2xx = wrk_summary(text)
    assert load.requests == requests
    assert load.rps == pytest.approx(rps, rel=0.01)
    assert load.errors["status"] == non_2xx
    assert load.error_count == non_2xx  # no socket errors in these runs


def test_parse_reads_the_latency_spectrum_in_ms() -> None:
    load = loadgen.parse((SAMPLES / "wrk_hello.txt").read_text())
    levels = [p for p, _ in load.percentiles]
    assert levels[:3] == [1, 2, 3]
    assert levels[-4:] == [99.5, 99.9, 99.95, 99.99]
    latencies = [ms for _, ms in load.percentiles]
    assert latencies == sorted(latencies)
    assert load.latency(50) <= load.latency(99) <= load.latency(99.9) <= load.max_ms
    line = next(ln for ln in (SAMPLES / "wrk_hello.txt").read_text().splitlines() if "WRK" in ln)
    p50_us = int(re.search(r"\[50,(\d+)\]", line).group(1))  # type: ignore[union-attr]
    assert load.latency(50) == p50_us / 1000
    with pytest.raises(KeyError, match=r"99\.7"):
        load.latency(99.7)


def test_parse_without_the_report_line_shows_wrks_output() -> None:
    with pytest.raises(loadgen.WrkError, match=r"(?s)no WRK_JSON line.*unable to connect"):
        loadgen.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_parse_of_a_damaged_report_names_it() -> None:
    with pytest.raises(loadgen.WrkError, match=r"not what wrk_report\.lua writes"):
        loadgen.parse('WRK_JSON {"requests": 3}\n')


def load(rps: float, p50: float = 1.0, p99: float = 2.0, **errors: int) -> Load:
    """A 10-second run at `rps` with the given latencies (ms) and errors."""
    return Load(
        requests=int(rps * 10),
        duration_s=10.0,
        errors={"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0, **errors},
        percentiles=((50, p50), (99, p99), (99.9, p99 * 2)),
        max_ms=p99 * 3,
    )


def cell(server: str, handler: str, n: int, measured: Load | None, note: str = "") -> Cell:
    return Cell(server, server.title(), handler, n, measured, note)


def test_ratio_is_against_the_floor_for_the_same_handler_and_concurrency() -> None:
    cells = [
        cell("uvicorn", "hello", 32, load(20000)),
        cell("uvicorn", "hello", 1, load(10000)),
        cell("uvicorn", "io", 32, load(1000)),
        cell("lamina", "hello", 32, load(5000)),
        cell("lamina", "hello", 1, load(5000)),
        cell("lamina", "io", 32, load(1500)),
        cell("lamina", "cpu", 32, load(150)),  # no floor for cpu in this run
    ]
    ratios = report.ratio_to_floor(cells)
    assert ratios[("lamina", "hello", 32)] == pytest.approx(0.25)
    assert ratios[("lamina", "hello", 1)] == pytest.approx(0.5)
    assert ratios[("lamina", "io", 32)] == pytest.approx(1.5)
    assert ratios[("uvicorn", "hello", 32)] == pytest.approx(1.0)
    assert ("lamina", "cpu", 32) not in ratios
    table = {(r[0], r[1], r[2]): r for r in report.rows(cells)}
    assert table[("Lamina", "hello", "32")][3] == "5000"
    assert table[("Lamina", "hello", "32")][8] == "0.25x"
    assert table[("Lamina", "cpu", "32")][8] == "n/a (no floor)"


def test_rows_show_latencies_errors_and_why_a_server_did_not_run() -> None:
    cells = [
        cell("uvicorn", "hello", 32, load(20000, p50=0.5, p99=1.25, status=2, timeout=1)),
        cell("ray", "hello", 32, None, "exited with 1 before answering"),
        cell("ray", "io", 32, None, "exited with 1 before answering"),
    ]
    rows = report.rows(cells)
    measured = ["Uvicorn", "hello", "32", "20000", "0.50", "1.25", "2.50"]
    assert rows[0] == [*measured, "3 (2 status, 1 timeout)", "1.00x"]
    assert len(rows) == 2  # one row for the server that did not run, not one per cell
    assert rows[1][0] == "Ray"
    assert rows[1][-1] == "did not run: exited with 1 before answering"


def test_a_cell_where_no_request_completed_says_so_instead_of_0_errors() -> None:
    cells = [
        cell("uvicorn", "hello", 256, load(20000)),
        cell("serverless-offline", "hello", 256, load(0)),  # every request still waiting
    ]
    row = report.rows(cells)[1]
    assert row[3:] == ["0", "-", "-", "-", "no request completed in 10 s", "-"]


def test_markdown_table_has_a_header_and_one_line_per_row() -> None:
    cells = [
        cell("uvicorn", "hello", 1, load(100)),
        cell("chalice", "hello", 1, None, "answered 500 'a|b'"),
    ]
    lines = report.markdown(cells).splitlines()
    assert lines[0].startswith("| server | handler | concurrency | req/s | p50 ms")
    assert lines[1] == "|" + "---|" * len(report.HEADERS)
    assert len(lines) == 4
    assert all(line.count("|") == len(report.HEADERS) + 1 for line in lines)  # '|' escaped


def test_gateway_added_latency_is_lamina_minus_the_floor_at_concurrency_1() -> None:
    cells = [
        cell("uvicorn", "hello", 1, load(20000, p50=0.05, p99=0.5)),
        cell("lamina", "hello", 1, load(5000, p50=0.25, p99=1.5)),
        cell("uvicorn", "hello", 32, load(20000, p50=1.0, p99=5)),
        cell("lamina", "hello", 32, load(5000, p50=6.0, p99=50)),
        cell("lamina", "io", 1, load(45, p50=21, p99=25)),  # no floor: not reported
    ]
    added = report.gateway_added(cells)
    assert list(added) == ["hello"]
    p50, p99 = added["hello"]
    assert p50 == pytest.approx(0.2)
    assert p99 == pytest.approx(1.0)
