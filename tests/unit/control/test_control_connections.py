"""The bound on an app's PostgreSQL connections, and the cap that refuses to start over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.control.connections import connection_bound
from lamina.errors import PlatformError
from lamina.manifest.loader import parse_app

MANIFEST = """
app: shop
services:
  orders:
    path: .
    tables: {orders: {key: id}}
    functions:
      place: {handler: h.place, max_instances: 20}
      report: {handler: h.report, max_instances: 3, concurrency: 4}
  mail:
    path: .
    functions:
      send: {handler: h.send}
"""


def test_the_bound_adds_the_store_pool_service_tables_and_instances_times_concurrency(
    tmp_path: Path,
) -> None:
    (tmp_path / "h.py").write_text(
        "def place(e, c): ...\ndef report(e, c): ...\ndef send(e, c): ...\n"
    )
    app = parse_app(MANIFEST, root=tmp_path)
    bound = connection_bound(app.functions().values(), store_pool=10, service_tables=1)
    assert bound.functions == {"orders.place": 20, "orders.report": 12, "mail.send": 10}
    assert bound.total == 10 + 1 + 20 + 12 + 10
    assert bound.to_json()["max"] == 53
    bound.check(None)
    bound.check(53)


def test_a_cap_below_the_bound_is_refused_naming_the_largest_parts(tmp_path: Path) -> None:
    (tmp_path / "h.py").write_text(
        "def place(e, c): ...\ndef report(e, c): ...\ndef send(e, c): ...\n"
    )
    app = parse_app(MANIFEST, root=tmp_path)
    bound = connection_bound(app.functions().values(), store_pool=10, service_tables=1)
    with pytest.raises(PlatformError) as info:
        bound.check(40)
    assert str(info.value).startswith(
        "the app may hold up to 53 PostgreSQL connections, over --max-db-connections 40:"
        " platform store pool 10, service tables 1, functions (max_instances x concurrency) 42,"
        " largest orders.place 20, orders.report 12, mail.send 10."
    )
