"""Compliance checks: cdk-nag over the whole app and its acknowledgements (`nag`), the IAM
policy linter over every template (`policies`), and the finding report (`report`).

Nothing is imported here: `python -m compliance.policies` and `compliance.report` read
`cdk.out` and must not start the CDK's Node runtime that `compliance.nag` needs.
"""
