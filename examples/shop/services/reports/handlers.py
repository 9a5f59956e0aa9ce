"""reports: daily totals of orders, from this service's own copy of the sales.

Owns the tables `sales` (key: day, sort: order_id) and `daily` (key: day). `record_sale`
(topic order-created) keeps one item per order, so a repeated delivery changes nothing;
`daily_totals` (scheduled at 00:05 UTC) sums the day before the tick into `daily`. Invoke it
with {"day": "YYYY-MM-DD"} to compute any day now.
"""

import json
import re
import time
from datetime import date, datetime, timedelta

import lamina

sales = lamina.table("sales")
daily = lamina.table("daily")

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def record_sale(event, context):
    for record in event["Records"]:
        order = json.loads(record["Sns"]["Message"])
        sales.put(
            {
                "day": order["created_at"][:10],
                "order_id": order["id"],
                "user": order["user"],
                "total_cents": order["total_cents"],
            }
        )


def daily_totals(event, context):
    day = event.get("day") if isinstance(event, dict) else None
    if day is None:  # an EventBridge Scheduled Event: report the UTC day before its time
        tick = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        day = (tick.date() - timedelta(days=1)).isoformat()
    if not isinstance(day, str) or not DAY.match(day):
        raise ValueError(f"day: expected YYYY-MM-DD, got {day!r}")
    date.fromisoformat(day)  # a real date
    orders, revenue, customers, cursor = 0, 0, set(), None
    while True:
        page = sales.query(day, cursor=cursor)
        for sale in page.items:
            orders += 1
            revenue += sale["total_cents"]
            customers.add(sale["user"])
        cursor = page.cursor
        if cursor is None:
            break
    report = {
        "day": day,
        "orders": orders,
        "revenue_cents": revenue,
        "customers": len(customers),
        "generated_at": time.time(),
    }
    daily.put(report)
    print(f"report {day}: {orders} orders, {revenue} cents")
    return report
