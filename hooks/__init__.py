"""CodeDeploy lifecycle hooks (their own Lambda asset, separate from the handler)."""
