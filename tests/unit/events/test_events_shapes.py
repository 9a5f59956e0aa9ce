"""Event builders against the AWS Lambda developer guide's examples, and through Powertools."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SNSEvent, SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsModel, SqsModel

from lamina.events.shapes import (
    SnsMessage,
    SqsRecord,
    iso_ms,
    iso_s,
    scheduled_event,
    sns_event,
    sqs_event,
)


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# --- SQS ------------------------------------------------------------------------------------

# The first record of the SQS example in "Using Lambda with Amazon SQS" (developer guide).
GUIDE_SQS_RECORD: dict[str, Any] = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    "body": "Test message.",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
    },
    "messageAttributes": {
        "myAttribute": {
            "stringValue": "myValue",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    },
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "awsRegion": "us-east-2",
}


def guide_sqs_record(**changes: Any) -> SqsRecord:
    fields: dict[str, Any] = {
        "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receipt_handle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": "Test message.",
        "sent_timestamp_ms": 1545082649183,
        "receive_count": 1,
        "first_receive_timestamp_ms": 1545082649185,
        "sender_id": "AIDAIENQZJOLO23YVJ4VO",
        "message_attributes": {"myAttribute": "myValue"},
    }
    fields.update(changes)
    return SqsRecord(**fields)


def guide_sqs_event(*records: SqsRecord) -> dict[str, Any]:
    return sqs_event(list(records), queue="my-queue", region="us-east-2", account_id="123456789012")


def test_sqs_event_matches_the_developer_guide_example() -> None:
    assert guide_sqs_event(guide_sqs_record()) == {"Records": [GUIDE_SQS_RECORD]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("text", {"stringValue": "text", "dataType": "String"}, id="a str is String"),
        pytest.param(42, {"stringValue": "42", "dataType": "Number"}, id="an int is Number"),
        pytest.param(2.5, {"stringValue": "2.5", "dataType": "Number"}, id="a float is Number"),
        pytest.param(
            b"\x00\x01", {"binaryValue": "AAE=", "dataType": "Binary"}, id="bytes are base64 Binary"
        ),
    ],
)
def test_sqs_message_attribute_types(value: Any, expected: dict[str, Any]) -> None:
    event = guide_sqs_event(guide_sqs_record(message_attributes={"a": value}))
    assert event["Records"][0]["messageAttributes"]["a"] == {
        **expected,
        "stringListValues": [],
        "binaryListValues": [],
    }


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="a boolean"),
        pytest.param(["a"], id="a list"),
        pytest.param(None, id="None"),
    ],
)
def test_sqs_rejects_attributes_it_cannot_carry(value: Any) -> None:
    with pytest.raises(
        ValueError, match=r"message attribute 'a': expected str, int, float, bytes|booleans"
    ):
        guide_sqs_event(guide_sqs_record(message_attributes={"a": value}))


def test_md5_of_body_hashes_the_utf8_body() -> None:
    record = guide_sqs_event(guide_sqs_record(body="héllo"))["Records"][0]
    assert record["md5OfBody"] == "be50e8478cf24ff3595bc7307fb91b50"  # md5 of b"h\xc3\xa9llo"


def test_sqs_event_parses_with_powertools_data_classes() -> None:
    event = SQSEvent(guide_sqs_event(guide_sqs_record(receive_count=3)))
    record = next(iter(event.records))
    assert record.message_id == "059f36b4-87a3-44ab-83d2-661975830a7d"
    assert record.body == "Test message."
    assert record.attributes.approximate_receive_count == "3"
    assert record.attributes.sent_timestamp == "1545082649183"
    assert record.message_attributes["myAttribute"].string_value == "myValue"
    assert record.event_source_arn == "arn:aws:sqs:us-east-2:123456789012:my-queue"
    assert record.aws_region == "us-east-2"
    assert record.queue_url == "https://sqs.us-east-2.amazonaws.com/123456789012/my-queue"


def test_sqs_event_validates_with_the_powertools_parser_model() -> None:
    model = SqsModel.model_validate(guide_sqs_event(guide_sqs_record(), guide_sqs_record()))
    assert [r.md5OfBody for r in model.Records] == ["e4e68fb7bd0e697a0ae8f1bb342846b3"] * 2


def test_powertools_batch_processor_reports_only_the_failed_message() -> None:
    records = [guide_sqs_record(message_id=f"m{i}", body=json.dumps({"n": i})) for i in range(4)]
    event = guide_sqs_event(*records)

    def handle(record: SQSRecord) -> int:
        n = int(json.loads(record.body)["n"])
        if n == 2:
            raise ValueError("two is unlucky")
        return n

    result = process_partial_response(
        event=event, record_handler=handle, processor=BatchProcessor(event_type=EventType.SQS)
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}


def test_powertools_batch_processor_reports_no_failures_for_a_clean_batch() -> None:
    event = guide_sqs_event(guide_sqs_record(message_id="a"), guide_sqs_record(message_id="b"))
    result = process_partial_response(
        event=event,
        record_handler=lambda record: record.body,
        processor=BatchProcessor(event_type=EventType.SQS),
    )
    assert result == {"batchItemFailures": []}


# --- SNS ------------------------------------------------------------------------------------

SUBSCRIPTION_ID = "21be56ed-a058-49f5-8c98-aedd2564c486"


def guide_sns_event(**changes: Any) -> dict[str, Any]:
    """Built from the values of the SNS example in "Using Lambda with Amazon SNS"."""
    fields: dict[str, Any] = {
        "message_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "message": "Hello from SNS!",
        "timestamp_ms": ms("2019-01-02T12:45:07.000Z"),
        "subject": "TestInvoke",
        "message_attributes": {"Test": "TestString", "TestBinary": b"TestBinary"},
    }
    fields.update(changes)
    return sns_event(
        SnsMessage(**fields),
        topic="sns-lambda",
        subscription_id=SUBSCRIPTION_ID,
        region="us-east-1",
        account_id="123456789012",
    )


def test_sns_event_matches_the_developer_guide_example() -> None:
    (record,) = guide_sns_event()["Records"]
    assert record["EventVersion"] == "1.0"
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"] == (
        "arn:aws:sns:us-east-1:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486"
    )
    sns = record["Sns"]
    assert set(sns) == {
        "SignatureVersion", "Timestamp", "Signature", "SigningCertUrl", "MessageId", "Message",
        "MessageAttributes", "Type", "UnsubscribeUrl", "TopicArn", "Subject",
    }  # fmt: skip
    assert sns["Type"] == "Notification"
    assert sns["SignatureVersion"] == "1"
    assert sns["Timestamp"] == "2019-01-02T12:45:07.000Z"
    assert sns["MessageId"] == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert sns["Message"] == "Hello from SNS!"
    assert sns["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:sns-lambda"
    assert sns["Subject"] == "TestInvoke"
    assert sns["MessageAttributes"] == {
        "Test": {"Type": "String", "Value": "TestString"},
        "TestBinary": {"Type": "Binary", "Value": "VGVzdEJpbmFyeQ=="},
    }
    assert sns["UnsubscribeUrl"].endswith(
        "?Action=Unsubscribe&SubscriptionArn=" + record["EventSubscriptionArn"]
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(210.75, {"Type": "Number", "Value": "210.75"}, id="a float is Number"),
        pytest.param(3, {"Type": "Number", "Value": "3"}, id="an int is Number"),
        pytest.param(
            ["soccer", "rugby"],
            {"Type": "String.Array", "Value": '["soccer", "rugby"]'},
            id="a list is a String.Array of JSON text",
        ),
    ],
)
def test_sns_message_attribute_types(value: Any, expected: dict[str, str]) -> None:
    event = guide_sns_event(message_attributes={"a": value})
    assert event["Records"][0]["Sns"]["MessageAttributes"]["a"] == expected


def test_sns_subject_is_null_when_absent() -> None:
    assert guide_sns_event(subject=None)["Records"][0]["Sns"]["Subject"] is None


def test_sns_event_parses_with_powertools() -> None:
    event = SNSEvent(guide_sns_event())
    record = next(iter(event.records))
    assert record.event_source == "aws:sns"
    assert record.sns.message == "Hello from SNS!"
    assert record.sns.topic_arn == "arn:aws:sns:us-east-1:123456789012:sns-lambda"
    assert record.sns.message_attributes["Test"].value == "TestString"
    assert record.sns.subject == "TestInvoke"
    model = SnsModel.model_validate(guide_sns_event(subject=None))
    assert model.Records[0].Sns.Timestamp == dt.datetime(2019, 1, 2, 12, 45, 7, tzinfo=dt.UTC)


# --- EventBridge ----------------------------------------------------------------------------

# The example in "Using Lambda with scheduled events" / the EventBridge user guide.
GUIDE_SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2015-10-08T16:53:06Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],
    "detail": {},
}


def guide_scheduled_event(time_ms: int = ms("2015-10-08T16:53:06Z")) -> dict[str, Any]:
    return scheduled_event(
        event_id="53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        time_ms=time_ms,
        rule="my-scheduled-rule",
        region="us-east-1",
        account_id="123456789012",
    )


def test_scheduled_event_matches_the_documented_example() -> None:
    assert guide_scheduled_event() == GUIDE_SCHEDULED_EVENT


def test_scheduled_event_time_drops_milliseconds() -> None:
    assert guide_scheduled_event(ms("2015-10-08T16:53:06.999Z"))["time"] == "2015-10-08T16:53:06Z"


def test_scheduled_event_parses_with_powertools() -> None:
    event = EventBridgeEvent(guide_scheduled_event())
    assert event.detail_type == "Scheduled Event"
    assert event.source == "aws.events"
    assert event.resources == ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"]
    assert event.detail == {}
    model = EventBridgeModel.model_validate(guide_scheduled_event())
    assert model.time == dt.datetime(2015, 10, 8, 16, 53, 6, tzinfo=dt.UTC)


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch_ms", "with_ms", "seconds"),
    [
        pytest.param(0, "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00Z", id="the epoch"),
        pytest.param(
            1545082649183,
            "2018-12-17T21:37:29.183Z",
            "2018-12-17T21:37:29Z",
            id="the SQS example's SentTimestamp",
        ),
        pytest.param(
            1709251199999,
            "2024-02-29T23:59:59.999Z",
            "2024-02-29T23:59:59Z",
            id="the last millisecond of February 29th 2024",
        ),
    ],
)
def test_iso_timestamps(epoch_ms: int, with_ms: str, seconds: str) -> None:
    assert (iso_ms(epoch_ms), iso_s(epoch_ms)) == (with_ms, seconds)
