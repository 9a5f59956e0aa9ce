"""notifications: an outbox record per order, and the `emails` queue's consumer.

Owns the table `outbox` (key: order_id). `on_order_created` (topic order-created) writes the
outbox record and queues an email; `send_emails` (queue emails, batches of up to 10) "sends"
each one (prints it) and marks the record sent. A malformed message is reported in
`batchItemFailures`: only it comes back, and after `max_receive_count` receives it moves to
the dead-letter queue `dlq:queue:emails`; the rest of its batch is done.
"""

import json
import time

import lamina

outbox = lamina.table("outbox")


def on_order_created(event, context):
    for record in event["Records"]:
        order = json.loads(record["Sns"]["Message"])
        email = {
            "to": order["user"],
            "order_id": order["id"],
            "subject": f"Your order {order['id']}",
            "text": f"Thank you! Total: {order['total_cents'] / 100:.2f}.",
        }
        # At least once: a repeated delivery rewrites the same record and queues the email
        # again; send_emails sends it at most once per order (see below).
        outbox.put({**email, "status": "queued", "queued_at": time.time()})
        lamina.send("emails", email)


def send_emails(event, context):
    failures = []
    for record in event["Records"]:
        try:
            email = json.loads(record["body"])
            to, order_id = email["to"], email["order_id"]
            if not isinstance(to, str) or not isinstance(order_id, str):
                raise ValueError("to and order_id must be strings")
        except (ValueError, TypeError, KeyError) as exc:
            print(f"malformed email message {record['messageId']}: {exc!r}")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        entry = outbox.get(order_id)
        if entry is None:  # not an email this service queued
            print(f"no outbox record for order {order_id}; message {record['messageId']}")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if entry.get("sent_at") is None:  # a repeated message is not sent twice
            print(f"email to {to}: {email.get('subject')}")  # a real app calls its mail API here
            outbox.update(order_id, set={"status": "sent", "sent_at": time.time()})
    return {"batchItemFailures": failures}
