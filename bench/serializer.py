"""The floor of the per-record overhead: botocore serializing the handler's PutItem.

Every record the handler writes is one PutItem whose parameters (the contract's
attributes, the condition expression and its values: :func:`handler.repository.put_request`)
botocore turns into a JSON body; the bare baseline's PutItem carries only the key. The
difference is CPU the handler spends per record for as long as it writes through
botocore, whatever else it saves. Measured here in-process, with no network: only
botocore's ``serialize_to_request``, the step of a call whose cost grows with the request.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.session
from botocore.config import Config

import contract
from bench.events import s3_event
from bench.settings import REGION, SERIALIZER_CALLS, SERIALIZER_REPEATS, TABLE_NAME
from bench.stats import median
from handler.ledger import parse_record
from handler.repository import put_request
from local_aws import FAKE_CREDENTIALS


def serialization_us_per_record(
    calls: int = SERIALIZER_CALLS, repeats: int = SERIALIZER_REPEATS
) -> float:
    """Microseconds of CPU botocore spends serializing the handler's PutItem for one
    record over serializing the bare baseline's: the median of ``repeats`` rounds, each
    ``calls`` serializations of one request then of the other (in turn, so a busy moment
    of the machine hits both alike)."""
    # Built as the handler builds its client: without client-side parameter validation.
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(parameter_validation=False),
    )
    # The client's own serializer (its protocol, no validation): the one put_item calls.
    serializer = client._serializer
    operation = client.meta.service_model.operation_model("PutItem")
    entry = parse_record(s3_event("serializer", 1)["Records"][0])
    handler_request = put_request(TABLE_NAME, entry)
    # What bench.bare_handler sends for the same record.
    bare_request = {
        "TableName": TABLE_NAME,
        "Item": {contract.PARTITION_KEY: {"S": entry.filename}},
    }

    def cpu_ns(parameters: dict[str, Any]) -> int:
        started = time.process_time_ns()
        for _ in range(calls):
            serializer.serialize_to_request(parameters, operation)
        return time.process_time_ns() - started

    return median(
        [(cpu_ns(handler_request) - cpu_ns(bare_request)) / calls / 1000 for _ in range(repeats)]
    )
