"""The hook's boto3 clients are built at import: give boto3 a region and fake credentials first."""

from __future__ import annotations

import os

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
for variable in (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
):
    os.environ[variable] = "testing"
