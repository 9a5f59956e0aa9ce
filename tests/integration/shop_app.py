"""The shop app the dashboard tests (and scripts/dashboard_screenshots.py) run: three services
(storefront -> payments -> orders, one trace), HTTP routes, a queue with a dead-letter queue, a
topic and a schedule."""

from __future__ import annotations

from pathlib import Path

import yaml

HANDLERS = Path(__file__).parent / "handlers"


def write_shop_app(directory: Path, work_dir: Path) -> Path:
    """The app in `directory`; its orders service writes FULFILLED_FILE and reads FIXED_FILE
    in `work_dir` (`fixed` and `fulfilled.jsonl`)."""
    manifest = {
        "app": "shop",
        "services": {
            "storefront": {
                "path": str(HANDLERS),
                "functions": {
                    "products": {
                        "handler": "shop.products",
                        "events": [{"http": "GET /products"}],
                    },
                    "checkout": {
                        "handler": "shop.checkout",
                        "events": [{"http": "POST /orders"}],
                    },
                },
            },
            "payments": {
                "path": str(HANDLERS),
                "functions": {"charge": {"handler": "shop.charge", "memory": 256}},
            },
            "orders": {
                "path": str(HANDLERS),
                "env": {
                    "FIXED_FILE": str(work_dir / "fixed"),
                    "FULFILLED_FILE": str(work_dir / "fulfilled.jsonl"),
                },
                "tables": {"orders": {"key": "id"}},
                "functions": {
                    "fulfil": {
                        "handler": "shop.fulfil",
                        "events": [
                            {
                                "queue": {
                                    "name": "orders",
                                    "batch_size": 1,
                                    "max_receive_count": 1,
                                }
                            }
                        ],
                    },
                    "notify": {"handler": "shop.notify", "events": [{"topic": "order-events"}]},
                    "report": {"handler": "shop.report", "events": [{"schedule": "rate(1 hour)"}]},
                },
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lamina.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return directory
