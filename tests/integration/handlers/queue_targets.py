"""Handlers for the queue and topic tests, written exactly as for AWS; each records what it saw."""

import json
import os

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

processor = BatchProcessor(event_type=EventType.SQS)


def _log(path_variable, entry):
    with open(os.environ[path_variable], "a") as f:
        f.write(json.dumps(entry) + "\n")


def record_handler(record):
    _log(
        "QUEUE_LOG",
        {
            "body": record.body,
            "message_id": record.message_id,
            "receive_count": int(record.attributes.approximate_receive_count),
            "color": record.message_attributes["color"].string_value,
        },
    )
    if record.body == "bad":
        raise ValueError("this record cannot be processed")


def batch(event, context):
    """Powertools' SQS BatchProcessor: failed records go back as batchItemFailures."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def subscriber(event, context):
    (record,) = event["Records"]
    sns = record["Sns"]
    _log(
        "TOPIC_LOG",
        {
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "request_id": context.aws_request_id,
            "message_id": sns["MessageId"],
            "message": sns["Message"],
            "subject": sns["Subject"],
            "topic_arn": sns["TopicArn"],
            "kind": sns["MessageAttributes"]["kind"]["Value"],
        },
    )
