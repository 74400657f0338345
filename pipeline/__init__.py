"""The self-mutating CDK pipeline: git push is the only way code reaches AWS."""
