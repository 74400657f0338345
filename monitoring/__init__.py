"""The stage's dashboard (cdk-monitoring-constructs)."""
