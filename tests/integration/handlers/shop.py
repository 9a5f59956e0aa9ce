"""A small shop for the dashboard tests: a storefront service over HTTP whose checkout invokes
the payments service, which sends the order to the orders service's queue and publishes it to a
topic (one trace through three services); orders also runs a schedule. `fulfil` fails orders
marked "fail" until FIXED_FILE exists (a bug fixed before a redrive)."""

import json
import os
import time

import lamina


def products(event, context):
    print(f"listing products for {context.aws_request_id}")
    delay_ms = int((event.get("queryStringParameters") or {}).get("delay_ms", "0"))
    time.sleep(delay_ms / 1000)
    return {"statusCode": 200, "body": json.dumps([{"sku": "tea", "price": 4}])}


def checkout(event, context):
    order = json.loads(event.get("body") or "{}")
    print(f"order {order.get('id')} placed")
    charged = lamina.invoke("payments.charge", order)
    return {"statusCode": 201, "body": json.dumps({"queued": order.get("id"), **charged})}


def charge(event, context):
    print(f"charging order {event.get('id')}")
    lamina.send("orders", json.dumps(event))
    lamina.publish("order-events", f"order {event.get('id')} paid")
    return {"charged": True}


def fulfil(event, context):
    for record in event["Records"]:
        order = json.loads(record["body"])
        print(f"fulfilling order {order.get('id')}")
        if order.get("fail") and not os.path.exists(os.environ["FIXED_FILE"]):
            raise RuntimeError(f"warehouse offline for order {order.get('id')}")
        with open(os.environ["FULFILLED_FILE"], "a") as f:
            f.write(json.dumps(order) + "\n")


def notify(event, context):
    for record in event["Records"]:
        print(f"notifying: {record['Sns']['Message']}")


def report(event, context):
    print("nightly report")
