"""Upload ledger Lambda function: S3 notifications -> DynamoDB ledger."""
