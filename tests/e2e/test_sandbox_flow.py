"""The whole flow through the sandbox: uploads -> S3 events -> handler -> ledger."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
from typing import Any

import pytest

import contract
from sandbox import Faults, Sandbox

pytestmark = pytest.mark.e2e

# Pieces that S3 encodes awkwardly in notifications (quote_plus): the handler decodes them.
AWKWARD = ["a b", "x+y", "lit%2Bplus", "ünï", "café", "日本語", "a=b&c", "q?", "h#sh", "t~l", "🚀"]


def awkward_keys(count: int, rng: random.Random) -> list[str]:
    keys = []
    for n in range(count):
        parts = rng.sample(AWKWARD, k=rng.randint(1, 3))
        key = "/".join(parts) + f" {n}.txt"
        if n % 25 == 0:
            key = "long/" + "k" * 300 + f"-{n}"  # long keys survive encoding too
        keys.append(key)
    return keys


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item[contract.PARTITION_KEY]: item for item in items}


def test_each_object_recorded_once_and_latest_version_wins_under_faults(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(dynamodb_error_rate=0.1, duplicate_rate=0.2, shuffle=True, seed=7))
    rng = random.Random(7)
    keys = awkward_keys(170, rng)
    second_versions = set(rng.sample(keys, k=30))
    latest: dict[str, bytes] = {}
    for index, key in enumerate(keys):
        latest[key] = f"first {key}".encode()
        sandbox.upload(key, latest[key])
        # Re-upload a few keys a little later, so old and new events are in flight together.
        if index >= 5 and keys[index - 5] in second_versions:
            earlier = keys[index - 5]
            latest[earlier] = f"second, longer version of {earlier}".encode()
            sandbox.upload(earlier, latest[earlier])
    assert sum(1 for _ in latest) + len(second_versions) == 200

    sandbox.wait_until_idle(timeout=90)

    ledger = by_key(sandbox.ledger())
    assert sorted(ledger) == sorted(latest)
    s3 = sandbox.client("s3")
    for key, body in latest.items():
        assert ledger[key]["size"] == len(body), key
        # Ordered by S3's sequencer, not eventTime: the item is S3's current version.
        head = s3.head_object(Bucket=sandbox.bucket_name, Key=key)
        assert ledger[key][contract.ATTR_VERSION_ID] == head["VersionId"], key
        assert ledger[key][contract.ATTR_SEQUENCER], key
        assert ledger[key]["etag"] == hashlib.md5(body).hexdigest(), key  # noqa: S324 - S3's ETag
    stats = sandbox.stats()
    # The faults really happened: without them this test would prove little.
    assert stats["duplicates_injected"] > 0
    assert sum(stats["dynamodb_errors_injected"].values()) > 0
    assert stats["skipped"] > 0  # duplicates (and any stale events) changed nothing
    assert not [f for f in sandbox.failures() if _key_of(f) in latest]


def _key_of(record: dict[str, Any]) -> str:
    from urllib.parse import unquote_plus

    key: str = record["requestPayload"]["Records"][0]["s3"]["object"]["key"]
    return unquote_plus(key)


def test_poison_event_ends_in_failure_queue_and_redrive_records_it(sandbox: Sandbox) -> None:
    key = "poison/needs a fix+redrive.txt"
    sandbox.set_faults(Faults(dynamodb_access_denied=True))
    sandbox.upload(key, b"poison")
    sandbox.wait_until_idle(timeout=30)

    (record,) = [f for f in sandbox.failures() if _key_of(f) == key]
    function = sandbox.template.function
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == function.max_retry_attempts + 1
    assert record["requestContext"]["functionArn"].endswith(f":{function.alias_name}")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "BatchFailedError"
    assert "AccessDeniedException" in record["responsePayload"]["errorMessage"]
    assert key not in by_key(sandbox.ledger())

    sandbox.set_faults(Faults())
    assert sandbox.redrive().redriven >= 1

    assert by_key(sandbox.ledger())[key]["size"] == len(b"poison")
    assert not [f for f in sandbox.failures() if _key_of(f) == key]


def test_resources_are_deployed_as_the_template_defines_them(sandbox: Sandbox) -> None:
    template = sandbox.template
    table = sandbox.client("dynamodb").describe_table(TableName=sandbox.table_name)["Table"]
    (table_id,) = template.table_ids
    assert table["KeySchema"] == template.properties(table_id)["KeySchema"]
    s3 = sandbox.client("s3")
    assert s3.get_bucket_versioning(Bucket=sandbox.bucket_name)["Status"] == "Enabled"
    notification = s3.get_bucket_notification_configuration(Bucket=sandbox.bucket_name)
    assert [q["Events"] for q in notification["QueueConfigurations"]] == [
        list(rule.events) for rule in template.notifications
    ]


@pytest.mark.parametrize("key", ["cr\r", "carriage\rreturn/and\ttab.txt"])
def test_keys_with_a_carriage_return_or_tab_are_recorded(sandbox: Sandbox, key: str) -> None:
    sandbox.set_faults(Faults())
    sandbox.upload(key, b"control characters")
    sandbox.wait_until_idle(timeout=30)

    assert by_key(sandbox.ledger())[key]["size"] == len(b"control characters")


KILLS = 12


def test_killing_execution_environments_during_uploads_loses_no_upload(sandbox: Sandbox) -> None:
    """SIGKILL to random environments while 200 uploads run: each ends recorded or failed.

    A killed environment costs a cold start (a second or more here), so the kills are few
    and spaced: enough to hit invocations in flight, not to starve the run.
    """
    sandbox.set_faults(Faults())
    before = sandbox.stats()
    rng, stop = random.Random(3), threading.Event()
    kills: list[int] = []

    def killer() -> None:
        while len(kills) < KILLS and not stop.wait(rng.uniform(0.2, 0.6)):
            pids = sandbox.environment_pids()
            if pids:
                pid = rng.choice(pids)
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)

    thread = threading.Thread(target=killer, name="test-killer")
    thread.start()
    keys = [f"killed/{n} {rng.choice(AWKWARD)}.txt" for n in range(200)]
    try:
        for key in keys:
            sandbox.upload(key, key.encode())
        sandbox.wait_until_idle(timeout=240)
    finally:
        stop.set()
        thread.join()

    assert kills, "nothing was killed"
    recorded = set(by_key(sandbox.ledger()))
    failed = {_key_of(f) for f in sandbox.failures() if isinstance(f, dict)}
    assert [key for key in keys if key not in recorded | failed] == []
    after = sandbox.stats()
    delivered = (after["events_received"] - before["events_received"]) + (
        after["duplicates_injected"] - before["duplicates_injected"]
    )
    ended = sum(
        after[name] - before[name] for name in ("succeeded", "sent_to_failure_queue", "discarded")
    )
    assert delivered == ended == 200
