"""The ServiceStack: S3 uploads recorded by a Lambda function in a DynamoDB ledger."""
