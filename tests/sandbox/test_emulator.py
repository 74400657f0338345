"""The emulator's own costs taken out of moto: host lookup, SQS clock, retention check."""

from __future__ import annotations

import http.client
import inspect
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import boto3
import moto.dynamodb.comparisons
import moto.sqs.models
import pytest
from moto import backends
from moto.core.utils import unix_time

from sandbox.emulator import MotoServer

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-central-1/dynamodb/"
    "aws4_request, SignedHeaders=host, Signature=0",
}


def test_moto_lists_its_service_modules_once_not_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listings: list[int] = []
    listing = backends.list_of_moto_modules

    def counted() -> Iterable[str]:
        listings.append(1)
        modules: Iterable[str] = listing()
        return modules

    # moto's dispatcher calls it as backends.list_of_moto_modules, from this module.
    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    server = MotoServer()
    with server:
        for _ in range(3):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
            response = connection.getresponse()
            # What is counted here is the listing. The table list need not be empty: moto's
            # state is per process, shared with the other tests of this pytest worker (the
            # exact comparison failed once in a full parallel run, cause not pinned down).
            assert response.status == 200
            assert b'"TableNames"' in response.read()
            connection.close()
        server.reset()
    assert len(listings) == 1


def test_sqs_reads_the_same_clock_as_moto_does() -> None:
    sqs: Any = moto.sqs.models
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).replace(tzinfo=None)
    assert sqs.unix_time(moment) == unix_time(moment)
    assert sqs.unix_time_millis(moment) == unix_time(moment) * 1000
    assert abs(sqs.unix_time() - unix_time()) < 1.0
    assert abs(sqs.unix_time_millis() - time.time() * 1000) < 1000


def test_sqs_receive_checks_retention_without_building_the_queues_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[int] = []
    attributes = moto.sqs.models.Queue.attributes

    def counted(queue: Any) -> Any:
        built.append(1)
        return attributes.fget(queue)  # type: ignore[attr-defined]

    monkeypatch.setattr(moto.sqs.models.Queue, "attributes", property(counted))
    server = MotoServer()
    with server:
        sqs = boto3.client(
            "sqs",
            endpoint_url=server.url,
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        url = sqs.create_queue(QueueName="retention")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        built.clear()
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(received) == 5
        assert built == []
        # A message older than the queue's retention is no longer received, as before.
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
        sqs.send_message(QueueUrl=url, MessageBody="old")
        monkeypatch.setattr(moto.sqs.models, "unix_time", lambda dt=None: time.time() + 120)
        assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
        server.reset()


def _dynamodb(server: MotoServer) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=server.url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_condition_expression_is_lexed_once_and_still_decides_each_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = moto.dynamodb.comparisons.ConditionExpressionParser
    tokens: list[str] = []
    lex_one = parser._lex_one_node

    def counted(self: Any, remaining: str) -> Any:
        tokens.append(remaining)
        return lex_one(self, remaining)

    monkeypatch.setattr(parser, "_lex_one_node", counted)
    # A text no other test uses, so this process has not lexed it yet.
    condition = f"attribute_not_exists(k) OR v_{time.time_ns()} < :v"
    server = MotoServer()
    with server:
        dynamodb = _dynamodb(server)
        dynamodb.create_table(
            TableName="lexed",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        name = condition.split()[2]

        def put(value: int) -> str:
            try:
                dynamodb.put_item(
                    TableName="lexed",
                    Item={"k": {"S": "key"}, name: {"N": str(value)}},
                    ConditionExpression=condition,
                    ExpressionAttributeValues={":v": {"N": str(value)}},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                return "refused"
            return "written"

        assert put(5) == "written"
        lexed_first = len(tokens)
        assert [put(3), put(7), put(7)] == ["refused", "written", "refused"]
        server.reset()
    assert lexed_first > 0
    assert len(tokens) == lexed_first  # the later writes reused the first one's tokens


def test_moto_lists_a_response_classs_methods_once(monkeypatch: pytest.MonkeyPatch) -> None:
    listings: list[object] = []
    getmembers = inspect.getmembers

    def counted(subject: Any, predicate: Any = None) -> Any:
        listings.append(subject)
        return getmembers(subject, predicate)

    monkeypatch.setattr(inspect, "getmembers", counted)
    server = MotoServer()
    with server:
        dynamodb = _dynamodb(server)
        for _ in range(3):
            assert dynamodb.list_tables()["TableNames"] == []
        server.reset()
    assert len(listings) <= 1  # none if an earlier test in this process listed it already
