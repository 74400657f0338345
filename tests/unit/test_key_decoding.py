"""Property: any key S3 can hold survives S3's encoding and the handler's decoding."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.ledger import decode_key
from local_aws import FakeLambdaContext
from tests.unit.conftest import s3_event, s3_record, stored

MAX_KEY_BYTES = 1024


def _fit_to_s3_limit(text: str) -> str:
    # Cut at 1024 UTF-8 bytes without splitting a character.
    return text.encode("utf-8")[:MAX_KEY_BYTES].decode("utf-8", errors="ignore")


# Any Unicode scalar value but NUL (surrogates can't be UTF-8), 1..1024 UTF-8 bytes.
s3_keys = (
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=1,
        max_size=MAX_KEY_BYTES,
    )
    .map(_fit_to_s3_limit)
    .filter(bool)
)


@given(key=s3_keys)
@settings(max_examples=500)
def test_decoding_the_s3_encoded_key_gives_the_key_back(key: str) -> None:
    assert decode_key(quote_plus(key)) == key


@given(key=s3_keys)
@settings(
    max_examples=40,
    deadline=None,
    # The moto table is shared by the examples on purpose: each asserts its own key.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_handler_records_any_key_under_exactly_that_key(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext, key: str
) -> None:
    app.lambda_handler(s3_event(s3_record(key)), lambda_context)
    item = stored(ledger_table, key)
    assert item is not None
    assert item["filename"] == key
