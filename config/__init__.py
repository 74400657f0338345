"""The validated `cdk.json` configuration the CDK app and the sandbox read."""
