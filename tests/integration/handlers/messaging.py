"""Function code that produces events with lamina.send / lamina.publish, and consumers."""

import json
import os

import lamina


def produce(event, context):
    message_id = lamina.send("orders", {"order": event["order"]}, attributes={"kind": "book"})
    published = lamina.publish("shipped", f"order {event['order']}", subject="Shipped")
    return {"sent": message_id, "published": published}


def send_to_nowhere(event, context):
    lamina.send("no-such-queue", "x")


def consume(event, context):
    with open(os.environ["MESSAGING_LOG"], "a") as f:
        for record in event["Records"]:
            if record.get("eventSource") == "aws:sqs":
                entry = {
                    "source": "sqs",
                    "body": json.loads(record["body"]),
                    "id": record["messageId"],
                    "kind": record["messageAttributes"]["kind"]["stringValue"],
                }
            else:
                entry = {
                    "source": "sns",
                    "message": record["Sns"]["Message"],
                    "subject": record["Sns"]["Subject"],
                    "id": record["Sns"]["MessageId"],
                }
            f.write(json.dumps(entry) + "\n")
