"""The emulator's own costs taken out of moto: the host lookup and the SQS clock."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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
            assert (response.status, response.read()) == (200, b'{"TableNames": []}')
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
