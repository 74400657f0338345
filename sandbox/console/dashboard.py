"""The stage's CloudWatch dashboard, read from `cdk.out` with its tokens resolved.

The MonitoringStack's `AWS::CloudWatch::Dashboard` body is a `Fn::Join` of JSON text and
tokens: `Ref AWS::Region` and `Fn::GetStackOutput` of the ServiceStack's outputs (weak
cross-stack references), whose values are `Ref`/`Fn::GetAtt` of the service's resources.
:func:`load_dashboard` resolves them to the names the sandbox gave those resources, so the
console draws the very widgets CloudWatch would, over the sandbox's metrics.

Body structure: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sandbox.template import TemplateError, cloud_assembly_stacks

DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
GRID_COLUMNS = 24
DEFAULT_RANGE = timedelta(hours=3)  # CloudWatch's default when the body gives no start


@dataclass(frozen=True)
class Widget:
    """One widget: its type ("text", "alarm", "metric"...), grid position and properties."""

    type: str
    x: int
    y: int
    width: int
    height: int
    properties: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.properties.get("title", ""))


@dataclass(frozen=True)
class Dashboard:
    """A dashboard body: name, time range (`start`/`end` as the body gives them), widgets."""

    name: str
    start: str
    end: str | None
    widgets: tuple[Widget, ...]
    body: dict[str, Any] = field(repr=False, default_factory=dict)

    def range_seconds(self) -> float:
        """How far back a relative `start` ("-PT3H") reaches, in seconds."""
        return parse_relative_start(self.start).total_seconds()


@dataclass(frozen=True)
class Attributes:
    """A deployed resource as intrinsics see it: its Ref value and its GetAtt attributes."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


_DURATION = re.compile(
    r"^-P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_relative_start(start: str) -> timedelta:
    """`-PT3H` -> 3 hours. Absolute ISO 8601 starts are not relative: TemplateError."""
    match = _DURATION.match(start)
    if match is None or not any(match.groups()):
        raise TemplateError(
            f"dashboard start {start!r} is not a relative ISO 8601 duration such as -PT3H "
            "(the console shows relative ranges ending now)"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


class BodyResolver:
    """Resolves a dashboard body's intrinsics against the sandbox's deployed resources.

    `physical` maps the ServiceStack's logical ids to what was deployed for them; `outputs`
    are the stacks' Outputs sections by stack name (for Fn::GetStackOutput).
    """

    def __init__(
        self,
        physical: Mapping[str, Attributes],
        outputs: Mapping[str, Mapping[str, Any]],
        pseudo: Mapping[str, str],
    ) -> None:
        self._physical = physical
        self._outputs = outputs
        self._pseudo = pseudo

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self.resolve(part) for part in parts)
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::GetAtt":
                return self._get_att(argument[0], argument[1])
            if name == "Fn::GetStackOutput":
                return self._stack_output(argument["StackName"], argument["OutputName"])
        raise TemplateError(
            f"the console can't resolve {json.dumps(value)} in the dashboard body "
            "(supported: Fn::Join, Ref, Fn::GetAtt, Fn::GetStackOutput of deployed resources)"
        )

    def _ref(self, logical_id: str) -> str:
        if logical_id in self._pseudo:
            return self._pseudo[logical_id]
        if logical_id in self._physical:
            return self._physical[logical_id].ref
        raise TemplateError(
            f"the dashboard refers to {logical_id}, which the sandbox didn't deploy"
        )

    def _get_att(self, logical_id: str, attribute: str) -> str:
        deployed = self._physical.get(logical_id)
        if deployed is None or attribute not in deployed.attributes:
            raise TemplateError(
                f"the dashboard reads {logical_id}.{attribute}, which the sandbox doesn't know"
            )
        return deployed.attributes[attribute]

    def _stack_output(self, stack_name: str, output_name: str) -> str:
        output = self._outputs.get(stack_name, {}).get(output_name)
        if output is None:
            raise TemplateError(
                f"the dashboard reads output {output_name} of stack {stack_name}, which "
                "cdk.out doesn't define: run `make synth`"
            )
        return self.resolve(output["Value"])


def find_dashboard_template(cdk_out: Path, service_stack_name: str) -> tuple[str, dict[str, Any]]:
    """(logical id, resource) of the dashboard that reads `service_stack_name`'s outputs.

    The stage's MonitoringStack is the stack whose dashboard refers to the service stack the
    sandbox runs, so a pipeline's other stages in the same cdk.out are never picked.
    """
    found = []
    for _, template_path in cloud_assembly_stacks(cdk_out):
        template = json.loads(template_path.read_text(encoding="utf-8"))
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") != DASHBOARD_TYPE:
                continue
            body = resource.get("Properties", {}).get("DashboardBody")
            if f'"StackName": "{service_stack_name}"' in json.dumps(body):
                found.append((logical_id, resource))
    if not found:
        raise TemplateError(
            f"no {DASHBOARD_TYPE} in {cdk_out} reads stack {service_stack_name}: is the "
            "MonitoringStack part of the app? Run `make synth`"
        )
    if len(found) > 1:
        raise TemplateError(f"several dashboards read {service_stack_name}: expected one")
    return found[0]


def stack_outputs(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """Every stack's Outputs section in the assembly, by stack name."""
    outputs = {}
    for stack, template_path in cloud_assembly_stacks(cdk_out):
        template = json.loads(template_path.read_text(encoding="utf-8"))
        outputs[stack["name"]] = template.get("Outputs", {})
    return outputs


def parse_dashboard(name: str, body: dict[str, Any]) -> Dashboard:
    """A resolved body (the JSON CloudWatch stores) as a Dashboard; TemplateError if malformed."""
    widgets = []
    for index, raw in enumerate(body.get("widgets", [])):
        try:
            widget = Widget(
                type=str(raw["type"]),
                x=int(raw.get("x", 0)),
                y=int(raw.get("y", 0)),
                width=int(raw.get("width", 6)),
                height=int(raw.get("height", 6)),
                properties=dict(raw.get("properties", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TemplateError(f"dashboard widget {index} is malformed: {error}") from error
        if widget.x + widget.width > GRID_COLUMNS:
            raise TemplateError(
                f"dashboard widget {index} ({widget.title or widget.type}) reaches column "
                f"{widget.x + widget.width}, past CloudWatch's {GRID_COLUMNS}-column grid"
            )
        widgets.append(widget)
    start = str(body.get("start", f"-PT{int(DEFAULT_RANGE.total_seconds() // 3600)}H"))
    parse_relative_start(start)
    end = body.get("end")
    return Dashboard(name, start, None if end is None else str(end), tuple(widgets), body)


def load_dashboard(
    cdk_out: Path,
    service_stack_name: str,
    physical: Mapping[str, Attributes],
    pseudo: Mapping[str, str],
) -> Dashboard:
    """The stage's dashboard from `cdk_out`, tokens resolved to the sandbox's names."""
    _, resource = find_dashboard_template(cdk_out, service_stack_name)
    properties = resource.get("Properties", {})
    resolver = BodyResolver(physical, stack_outputs(cdk_out), pseudo)
    text = resolver.resolve(properties["DashboardBody"])
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateError(f"the dashboard body is not JSON after resolving: {error}") from error
    name = properties.get("DashboardName")
    return parse_dashboard(resolver.resolve(name) if name else "dashboard", body)
