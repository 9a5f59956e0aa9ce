"""The dashboard: a static web UI over the admin API. This package serves the page (built
front-end assets in `static/`, from the sources in the repository's `dashboard/` folder) and
holds the pure pieces of its data: time series (`series`) and the service map (`topology`).
It never holds data in the page and never calls the store: the admin API's routes
(`lamina.control.dashboard_api`) do, behind the admin token. Entry points: `asset_routes`,
`PUBLIC_PATHS`.
"""

from __future__ import annotations

from lamina.dashboard.assets import PUBLIC_PATHS, STATIC_DIR, asset_routes

__all__ = ["PUBLIC_PATHS", "STATIC_DIR", "asset_routes"]
