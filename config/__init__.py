"""Names and configuration shared by the CDK app, its stacks, the sandbox and tests."""
