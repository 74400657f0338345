"""AWS regions and the partitions they belong to, without the CDK (plain data and a look-up).

A region name is accepted when it has the shape AWS gives regions in one of its partitions,
so a region AWS opens tomorrow is accepted today while a made-up one (`xx-moon-1`) is not.
The shapes are the `regionRegex` of each partition in AWS's endpoint metadata
(botocore/data/partitions.json); a test keeps this table equal to that file's regions.
"""

from __future__ import annotations

import re

# Partition id -> the shape of its region names. The more specific ones come first: an
# `us-gov-*`, `us-iso*-*` or `eusc-*` name belongs to its own partition, never to `aws`.
PARTITION_REGION_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws-cn", re.compile(r"^cn-[a-z]+-\d+$")),
    ("aws-us-gov", re.compile(r"^us-gov-[a-z]+-\d+$")),
    ("aws-iso", re.compile(r"^us-iso-[a-z]+-\d+$")),
    ("aws-iso-b", re.compile(r"^us-isob-[a-z]+-\d+$")),
    ("aws-iso-e", re.compile(r"^eu-isoe-[a-z]+-\d+$")),
    ("aws-iso-f", re.compile(r"^us-isof-[a-z]+-\d+$")),
    ("aws-eusc", re.compile(r"^eusc-de-[a-z]+-\d+$")),
    ("aws", re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+$")),
)
# One real region per partition, for messages and tests.
EXAMPLE_REGIONS = {
    "aws": "eu-central-1",
    "aws-cn": "cn-north-1",
    "aws-us-gov": "us-gov-west-1",
    "aws-iso": "us-iso-east-1",
    "aws-iso-b": "us-isob-east-1",
    "aws-iso-e": "eu-isoe-west-1",
    "aws-iso-f": "us-isof-south-1",
    "aws-eusc": "eusc-de-east-1",
}


def partition_of(region: str) -> str | None:
    """The partition id (`aws`, `aws-cn`, `aws-eusc`...) of `region`, or None if it is no
    AWS region name."""
    for partition, shape in PARTITION_REGION_SHAPES:
        if shape.match(region):
            return partition
    return None
