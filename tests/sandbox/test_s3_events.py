"""The emulator's S3 events carry `versionId` and a `sequencer` that follows S3's write order."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest

from handler.ledger import normalise_sequencer
from local_aws import moto_server
from sandbox.s3_events import SEQUENCER_DIGITS

REGION = "eu-central-1"
KEY = "same key/written concurrently.txt"


@pytest.fixture
def clients() -> Iterator[dict[str, Any]]:
    with moto_server() as url:
        options = {
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        yield {name: boto3.client(name, **options) for name in ("s3", "sqs")}


def notifying_bucket(clients: dict[str, Any], name: str, *, versioned: bool) -> str:
    """A bucket whose ObjectCreated events go to a new queue; returns the queue's URL."""
    s3, sqs = clients["s3"], clients["sqs"]
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName=f"{name}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    return str(url)


def object_events(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    while len(objects) < count:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            body = json.loads(message["Body"])
            objects += [record["s3"]["object"] for record in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return objects


def test_concurrent_writes_of_one_key_get_sequencers_in_write_order(
    clients: dict[str, Any],
) -> None:
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    queue = notifying_bucket(clients, bucket, versioned=True)
    writers = [
        threading.Thread(
            target=clients["s3"].put_object,
            kwargs={"Bucket": bucket, "Key": KEY, "Body": f"writer {n}".encode()},
        )
        for n in range(8)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    events = object_events(clients["sqs"], queue, 8)

    assert all(len(e["sequencer"]) == SEQUENCER_DIGITS for e in events)
    assert len({e["sequencer"] for e in events}) == 8
    versions = clients["s3"].list_object_versions(Bucket=bucket, Prefix=KEY)
    # S3 lists versions newest first: the write order, newest first.
    newest_first = [v["VersionId"] for v in versions["Versions"]]
    by_sequencer = sorted(events, key=lambda e: normalise_sequencer(e["sequencer"]), reverse=True)
    assert [e["versionId"] for e in by_sequencer] == newest_first


def test_an_unversioned_bucket_sends_a_sequencer_and_no_version_id(
    clients: dict[str, Any],
) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:8]}"
    queue = notifying_bucket(clients, bucket, versioned=False)
    for n in range(3):
        clients["s3"].put_object(Bucket=bucket, Key=KEY, Body=b"x" * n)

    events = object_events(clients["sqs"], queue, 3)

    assert all("versionId" not in e for e in events)
    sequencers = [normalise_sequencer(e["sequencer"]) for e in events]
    assert sequencers == sorted(sequencers)
    assert len(set(sequencers)) == 3


@pytest.mark.parametrize("key", ["nl\n", "line\nfeed/inside.txt"])
def test_a_key_with_a_line_feed_is_refused_as_an_emulator_limit(
    clients: dict[str, Any], key: str
) -> None:
    bucket = f"lf-keys-{uuid.uuid4().hex[:8]}"  # moto's state outlives the server
    clients["s3"].create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        clients["s3"].put_object(Bucket=bucket, Key=key, Body=b"x")

    error = refused.value.response["Error"]
    assert error["Code"] == "NotImplemented"
    assert error["Message"].startswith("Emulator limit:")
    assert "line feed" in error["Message"]
    assert "AWS S3 accepts them" in error["Message"]
