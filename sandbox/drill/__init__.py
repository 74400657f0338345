"""The release drill: a CodeDeploy canary rehearsed offline on a simulated clock.

`rehearsal` runs one release (version 1 as built, version 2 with a fault from `fault`),
`report` prints its timeline, verdict and e-mails, `matrix` is the calibration study
(`make drill-matrix`) and `cli` is `python -m sandbox drill`. What the release follows
(deployment configuration, alarms, hook) is read from `cdk.out` by `sandbox.deployment`
and `sandbox.alarms`.
"""
