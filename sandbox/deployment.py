"""How CodeDeploy releases a new version of the function, as the template configures it.

Read from the synthesized template, never copied: the `live` alias's update policy names
the CodeDeploy application, deployment group and BeforeAllowTraffic hook; the deployment
group gives the deployment configuration (predefined `CodeDeployDefault.Lambda...` or an
`AWS::CodeDeploy::DeploymentConfig`), the alarms it watches and the auto-rollback events;
the `AWS::Events::Rule`s say what EventBridge forwards when a deployment changes state.

CodeDeploy's behaviour modelled (AWS CodeDeploy User Guide, "Deployments on an AWS Lambda
compute platform" and "Monitoring deployments with CloudWatch alarms"): the hook runs
against the new version before any traffic and must report Succeeded; traffic then
shifts by the configuration's steps (canary: P% for the interval, then 100%; linear: P%
more every interval; all at once); a watched alarm in ALARM while the deployment runs
stops it and, with DEPLOYMENT_STOP_ON_ALARM in the auto-rollback events, sends all
traffic back to the old version at once. A failed hook fails the deployment (FAILURE);
an alarm stops it (STOP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.alarms import resolve_intrinsics
from sandbox.template import ServiceTemplate, TemplateError, ref_target

Resolve = Callable[[Any, str], str]
FAILURE, STOP, SUCCESS, START = "FAILURE", "STOP", "SUCCESS", "START"
STOP_ON_ALARM, ON_FAILURE = "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_FAILURE"
_PREDEFINED = re.compile(
    r"^CodeDeployDefault\.Lambda(?:(?P<kind>Canary|Linear)(?P<percent>\d+)Percent"
    r"(?:Every)?(?P<minutes>\d+)Minutes?|(?P<all>AllAtOnce))$"
)


@dataclass(frozen=True)
class TrafficShifting:
    """A deployment configuration: the new version's weight (%) from each minute on."""

    name: str
    steps: tuple[tuple[int, float], ...]  # (minutes after traffic starts, % to the new version)

    def describe(self) -> str:
        parts = [f"{percent:g}% from minute {minute}" for minute, percent in self.steps]
        return f"{self.name} ({', '.join(parts)})"


def traffic_shifting(name: str, steps_from: Mapping[str, Any] | None = None) -> TrafficShifting:
    """A predefined Lambda configuration by name, or a custom one's TrafficRoutingConfig."""
    if steps_from is not None:
        return _custom_shifting(name, steps_from)
    match = _PREDEFINED.match(name)
    if match is None:
        raise TemplateError(
            f"deployment configuration {name!r} is not a Lambda configuration the drill knows "
            "(CodeDeployDefault.LambdaCanary*/LambdaLinear*/LambdaAllAtOnce or a custom one)"
        )
    if match.group("all"):
        return TrafficShifting(name, ((0, 100.0),))
    return _steps(
        name, match.group("kind"), float(match.group("percent")), int(match.group("minutes"))
    )


def _custom_shifting(name: str, config: Mapping[str, Any]) -> TrafficShifting:
    routing = config.get("TrafficRoutingConfig", {})
    kind = routing.get("Type")
    if kind == "AllAtOnce":
        return TrafficShifting(name, ((0, 100.0),))
    if kind == "TimeBasedCanary":
        canary = routing["TimeBasedCanary"]
        return _steps(
            name, "Canary", float(canary["CanaryPercentage"]), int(canary["CanaryInterval"])
        )
    if kind == "TimeBasedLinear":
        linear = routing["TimeBasedLinear"]
        return _steps(
            name, "Linear", float(linear["LinearPercentage"]), int(linear["LinearInterval"])
        )
    raise TemplateError(f"deployment configuration {name}: traffic routing {kind!r} is unknown")


def _steps(name: str, kind: str, percent: float, minutes: int) -> TrafficShifting:
    if kind == "Canary":
        return TrafficShifting(name, ((0, percent), (minutes, 100.0)))
    steps, weight, minute = [], 0.0, 0
    while weight < 100.0:
        weight = min(100.0, weight + percent)
        steps.append((minute, weight))
        minute += minutes
    return TrafficShifting(name, tuple(steps))


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule: its pattern and the (target ARN, input transformer) pairs."""

    logical_id: str
    pattern: dict[str, Any]
    targets: tuple[tuple[str, dict[str, Any] | None], ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        return _matches(self.pattern, event)

    def input_for(self, event: Mapping[str, Any], transformer: Mapping[str, Any] | None) -> str:
        """What the target receives: the transformed input, or the whole event as JSON."""
        if transformer is None:
            return json.dumps(event)
        text = str(transformer.get("InputTemplate", ""))
        for name, path in transformer.get("InputPathsMap", {}).items():
            text = text.replace(f"<{name}>", _json_path(event, str(path)))
        return text


def _matches(pattern: Mapping[str, Any], event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            if not _matches(expected, event.get(key)):
                return False
            continue
        if any(isinstance(v, Mapping) for v in expected):
            raise TemplateError(
                f"event pattern on {key!r}: content filters ({expected}) are not modelled"
            )
        actual = event.get(key)
        values = actual if isinstance(actual, list) else [actual]
        if not any(v in expected for v in values):
            return False
    return True


def _json_path(event: Mapping[str, Any], path: str) -> str:
    if not path.startswith("$."):
        raise TemplateError(f"input path {path!r}: only $.a.b paths are modelled")
    value: Any = event
    for part in path[2:].split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class HookSpec:
    """The BeforeAllowTraffic hook function: where its code is and its environment."""

    logical_id: str
    handler: str
    asset_dir: Path
    environment: dict[str, Any]


@dataclass(frozen=True)
class ReleaseSpec:
    """Everything about a release the template decides."""

    application_id: str
    deployment_group_id: str
    shifting: TrafficShifting
    alarm_refs: tuple[Any, ...]  # template values naming the watched alarms
    alarms_enabled: bool
    auto_rollback_events: frozenset[str]
    hook: HookSpec | None
    rules: tuple[EventRule, ...]

    def rolls_back_on(self, event: str) -> bool:
        return event in self.auto_rollback_events


def read_release(template: ServiceTemplate, resolve: Resolve) -> ReleaseSpec:
    """The release configuration of the template's function and `live` alias."""
    resources = template.resources
    alias_ids = [
        lid
        for lid, r in resources.items()
        if r.get("Type") == "AWS::Lambda::Alias"
        and ref_target(r.get("Properties", {}).get("FunctionName")) == template.function.logical_id
    ]
    policies = [
        (lid, resources[lid].get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate"))
        for lid in alias_ids
    ]
    policies = [(lid, p) for lid, p in policies if p]
    if len(policies) != 1:
        raise TemplateError(
            "the drill needs exactly one alias of the function with a CodeDeploy update policy "
            f"(CodeDeployLambdaAliasUpdate); found {len(policies)}"
        )
    _, policy = policies[0]
    group_id = _logical_id(policy["DeploymentGroupName"], "DeploymentGroupName")
    group = resources[group_id]["Properties"]
    alarm_config = group.get("AlarmConfiguration", {})
    rollback = group.get("AutoRollbackConfiguration", {})
    return ReleaseSpec(
        application_id=_logical_id(policy["ApplicationName"], "ApplicationName"),
        deployment_group_id=group_id,
        shifting=_group_shifting(resources, group),
        alarm_refs=tuple(a["Name"] for a in alarm_config.get("Alarms", [])),
        alarms_enabled=bool(alarm_config.get("Enabled", False)),
        auto_rollback_events=frozenset(rollback.get("Events", []))
        if rollback.get("Enabled")
        else frozenset(),
        hook=_hook(template, policy.get("BeforeAllowTrafficHook")),
        rules=_rules(resources, resolve),
    )


def _logical_id(value: Any, what: str) -> str:
    target = ref_target(value)
    if target is None:
        raise TemplateError(f"the alias update policy's {what} is not a reference: {value}")
    return target


def _group_shifting(resources: Mapping[str, Any], group: Mapping[str, Any]) -> TrafficShifting:
    name = group.get("DeploymentConfigName", "CodeDeployDefault.LambdaAllAtOnce")
    config_id = ref_target(name)
    if config_id is not None:
        return traffic_shifting(config_id, resources[config_id].get("Properties", {}))
    return traffic_shifting(str(name))


def _hook(template: ServiceTemplate, value: Any) -> HookSpec | None:
    hook_id = ref_target(value)
    if hook_id is None:
        return None
    resource = template.resources[hook_id]
    asset_path = resource.get("Metadata", {}).get("aws:asset:path")
    if not asset_path:
        raise TemplateError(f"hook function {hook_id} has no aws:asset:path metadata")
    props = resource["Properties"]
    return HookSpec(
        logical_id=hook_id,
        handler=str(props["Handler"]),
        asset_dir=(template.assembly_dir / asset_path).resolve(),
        environment=dict(props.get("Environment", {}).get("Variables", {})),
    )


def _rules(resources: Mapping[str, Any], resolve: Resolve) -> tuple[EventRule, ...]:
    rules = []
    for lid, resource in resources.items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        props = resource.get("Properties", {})
        if props.get("State", "ENABLED") != "ENABLED" or "EventPattern" not in props:
            continue
        pattern = resolve_intrinsics(props["EventPattern"], resolve, f"rule {lid}")
        targets = tuple(
            (resolve(t["Arn"], f"rule {lid} target"), t.get("InputTransformer"))
            for t in props.get("Targets", [])
        )
        rules.append(EventRule(lid, pattern, targets))
    return tuple(rules)


def deployment_event(
    *,
    state: str,
    deployment_id: str,
    application: str,
    deployment_group: str,
    region: str,
    account: str,
    time: str,
) -> dict[str, Any]:
    """The event CodeDeploy sends EventBridge when a deployment changes state."""
    return {
        "version": "0",
        "id": f"drill-{deployment_id}-{state.lower()}",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": account,
        "time": time,
        "region": region,
        "resources": [
            f"arn:aws:codedeploy:{region}:{account}:application:{application}",
            f"arn:aws:codedeploy:{region}:{account}:deploymentgroup:{application}/{deployment_group}",
        ],
        "detail": {
            "region": region,
            "deploymentId": deployment_id,
            "instanceGroupId": deployment_id,
            "deploymentGroup": deployment_group,
            "state": state,
            "application": application,
        },
    }
