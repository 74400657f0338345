"""cdk-nag over the whole app, and the one way this project acknowledges a finding."""

from compliance.nag import acknowledge, add_compliance_checks, arn_partition, logical_id

__all__ = ["acknowledge", "add_compliance_checks", "arn_partition", "logical_id"]
