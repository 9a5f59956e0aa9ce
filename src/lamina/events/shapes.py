"""Event shapes: the SQS, SNS and EventBridge scheduled events AWS Lambda delivers.

Pure builders: the caller supplies ids and times, so the same inputs give the same dict and
a retried event keeps its ids. Field names and formats follow the examples in the AWS Lambda
developer guide ("Using Lambda with Amazon SQS / Amazon SNS", "scheduled events"):
- SQS: `attributes` values are strings (epoch-ms timestamps as decimal text), message
  attributes use the SQS Lambda form `{"stringValue", "stringListValues": [],
  "binaryListValues": [], "dataType"}`, `md5OfBody` is the hex MD5 of the UTF-8 body.
  `md5OfMessageAttributes` is left out, as in the guide's example. `attributes.AWSTraceHeader`
  (X-Ray form) is there when the sender's trace context is known, as SQS adds it.
- SNS: `Timestamp` is ISO 8601 in UTC with milliseconds and `Z`; `Subject` is null when the
  publisher gave none; message attributes are `{"Type", "Value"}` with `Value` a string.
  Lamina does not sign messages: `Signature` is empty and the two URLs point at the Lamina
  admin API base URL the caller passes.
- EventBridge: `time` is ISO 8601 in UTC to the second with `Z`; `detail` is `{}`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "AttributeValue",
    "SnsMessage",
    "SqsRecord",
    "iso_ms",
    "iso_s",
    "queue_arn",
    "rule_arn",
    "scheduled_event",
    "sns_event",
    "sqs_event",
    "topic_arn",
]

DEFAULT_REGION = "us-east-1"  # as lamina.gateway.invoke_api.REGION
DEFAULT_ACCOUNT_ID = "000000000000"  # as lamina.gateway.invoke_api.ACCOUNT

# A message attribute as function code passes it: str -> String, int/float -> Number,
# bytes -> Binary, a list of str/int/float/bool/None -> String.Array (SNS only).
AttributeValue = str | int | float | bytes | Sequence[str | int | float | bool | None]


def queue_arn(
    queue: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{queue}"


def topic_arn(
    topic: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    return f"arn:aws:sns:{region}:{account_id}:{topic}"


def rule_arn(
    rule: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    return f"arn:aws:events:{region}:{account_id}:rule/{rule}"


def iso_ms(epoch_ms: int) -> str:
    """1545082649183 -> '2018-12-17T21:37:29.183Z' (UTC, milliseconds, Z)."""
    seconds, ms = divmod(epoch_ms, 1000)
    return f"{_utc(seconds):%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def iso_s(epoch_ms: int) -> str:
    """1444323186000 -> '2015-10-08T16:53:06Z' (UTC, whole seconds, Z)."""
    return f"{_utc(epoch_ms // 1000):%Y-%m-%dT%H:%M:%S}Z"


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


# --- SQS ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqsRecord:
    """One received queue message, as the queue mechanism knows it."""

    message_id: str  # stable across receives: the idempotency key
    receipt_handle: str  # new for every receive; deletes or extends this lease
    body: str
    sent_timestamp_ms: int  # epoch ms when the message was sent
    receive_count: int  # >= 1, including this receive
    first_receive_timestamp_ms: int  # epoch ms of the first receive
    sender_id: str = DEFAULT_ACCOUNT_ID
    message_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    aws_trace_header: str | None = None  # the sender's trace context, X-Ray form


def sqs_event(
    records: Sequence[SqsRecord],
    *,
    queue: str,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict[str, Any]:
    """The SQS event for a batch of `records` received from `queue`."""
    arn = queue_arn(queue, region=region, account_id=account_id)
    return {"Records": [_sqs_record(r, arn, region) for r in records]}


def _sqs_record(record: SqsRecord, arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(record.receive_count),
        "SentTimestamp": str(record.sent_timestamp_ms),
        "SenderId": record.sender_id,
        "ApproximateFirstReceiveTimestamp": str(record.first_receive_timestamp_ms),
    }
    if record.aws_trace_header:
        attributes["AWSTraceHeader"] = record.aws_trace_header
    return {
        "messageId": record.message_id,
        "receiptHandle": record.receipt_handle,
        "body": record.body,
        "attributes": attributes,
        "messageAttributes": {
            name: _sqs_attribute(name, value) for name, value in record.message_attributes.items()
        },
        "md5OfBody": hashlib.md5(record.body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _sqs_attribute(name: str, value: AttributeValue) -> dict[str, Any]:
    data_type, text = _attribute_type_and_text(name, value, arrays=False)
    base: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": data_type}
    if data_type == "Binary":
        return {"binaryValue": text, **base}
    return {"stringValue": text, **base}


def _attribute_type_and_text(name: str, value: AttributeValue, *, arrays: bool) -> tuple[str, str]:
    """(data type, value as text) for a message attribute; bytes are base64 text."""
    if isinstance(value, str):
        return "String", value
    if isinstance(value, bool):
        raise ValueError(f"message attribute {name!r}: booleans are not allowed, got {value!r}")
    if isinstance(value, int | float):
        return "Number", repr(value)
    if isinstance(value, bytes | bytearray):
        return "Binary", base64.b64encode(value).decode("ascii")
    if arrays and isinstance(value, list | tuple):
        return "String.Array", json.dumps(list(value), separators=(", ", ": "))
    expected = "str, int, float, bytes" + (" or a list" if arrays else "")
    raise ValueError(f"message attribute {name!r}: expected {expected}, got {value!r}")


# --- SNS ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """One published message, as the topic mechanism knows it."""

    message_id: str  # stable across delivery retries
    message: str
    timestamp_ms: int  # epoch ms when it was published
    subject: str | None = None
    message_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


def sns_event(
    message: SnsMessage,
    *,
    topic: str,
    subscription_id: str,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    base_url: str = "http://127.0.0.1",
) -> dict[str, Any]:
    """The SNS event delivering `message` from `topic` to subscription `subscription_id`.

    AWS delivers one record per invocation for SNS; `EventSubscriptionArn` is the topic ARN
    followed by `:` and the subscription id. `base_url` roots the unsubscribe and signing
    certificate URLs (valid URLs, so Powertools' parser models accept the event).
    """
    arn = topic_arn(topic, region=region, account_id=account_id)
    subscription_arn = f"{arn}:{subscription_id}"
    base = base_url.rstrip("/")
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message.message_id,
                    "TopicArn": arn,
                    "Subject": message.subject,
                    "Message": message.message,
                    "Timestamp": iso_ms(message.timestamp_ms),
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": f"{base}/sns/SimpleNotificationService-lamina.pem",
                    "UnsubscribeUrl": (
                        f"{base}/sns/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
                    ),
                    "MessageAttributes": {
                        name: _sns_attribute(name, value)
                        for name, value in message.message_attributes.items()
                    },
                },
            }
        ]
    }


def _sns_attribute(name: str, value: AttributeValue) -> dict[str, str]:
    data_type, text = _attribute_type_and_text(name, value, arrays=True)
    return {"Type": data_type, "Value": text}


# --- EventBridge --------------------------------------------------------------------------


def scheduled_event(
    *,
    event_id: str,
    time_ms: int,
    rule: str,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" for the tick at `time_ms` of schedule rule `rule`."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": iso_s(time_ms),
        "region": region,
        "resources": [rule_arn(rule, region=region, account_id=account_id)],
        "detail": {},
    }
