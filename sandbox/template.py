"""What the sandbox deploys, read from the synthesized ServiceStack template in `cdk.out`.

Everything comes from the template so the sandbox can't drift from what deploys to AWS.
Resources are selected by what they are (the function with our handler, the bucket
whose notification invokes it, the queue its on-failure destination names), never by
counting, so stacks can grow alarms, hooks and other functions without breaking this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import contract

LAMBDA_DEFAULT_RETRY_ATTEMPTS = 2  # Lambda's defaults when no EventInvokeConfig exists
LAMBDA_DEFAULT_MAX_EVENT_AGE = 21600
LAMBDA_DEFAULT_TIMEOUT = 3
LAMBDA_DEFAULT_MEMORY = 128
UNQUALIFIED = "$LATEST"


class TemplateError(RuntimeError):
    """`cdk.out` is missing, stale or doesn't hold what the sandbox needs."""


@dataclass(frozen=True)
class NotificationRule:
    """One S3 notification configuration of the upload bucket that invokes the function."""

    events: tuple[str, ...]
    # (Name, Value) pairs as S3 takes them: ("prefix", "in/"), ("suffix", ".csv").
    filter_rules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FunctionSpec:
    """The ledger function as deployed: code, environment, sizing and async semantics."""

    logical_id: str
    handler: str
    asset_dir: Path
    environment: dict[str, Any]
    timeout_seconds: int
    memory_mb: int
    alias_name: str
    max_retry_attempts: int
    max_event_age_seconds: int
    failure_queue_id: str | None


@dataclass(frozen=True)
class ServiceTemplate:
    """The parts of the ServiceStack the sandbox builds, with their logical ids."""

    stack_name: str
    region: str | None
    resources: dict[str, Any]
    function: FunctionSpec
    bucket_id: str
    notifications: tuple[NotificationRule, ...]
    table_ids: tuple[str, ...] = field(default=())
    assembly_dir: Path = field(default=Path())  # where the template and its assets are

    def properties(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return props


def load_service_template(cdk_out: Path) -> ServiceTemplate:
    """Find the stack holding the ledger function in `cdk_out` and read what to deploy.

    Raises TemplateError, naming the file and `make synth`, when `cdk_out` is missing,
    truncated or otherwise not a cloud assembly holding the ledger function.
    """
    manifest = cdk_out / "manifest.json"
    if not manifest.is_file():
        raise TemplateError(
            f"{cdk_out} has no manifest.json: synthesize the app first (`make synth`)"
        )
    try:
        return _load_service_template(cdk_out)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # A file of the right JSON but the wrong shape (a template "{}", an artifact
        # without its templateFile): name what is missing rather than fail on it.
        raise TemplateError(
            f"{cdk_out} is not a cloud assembly the sandbox can read ({type(error).__name__}: "
            f"{error}): run `make synth` again"
        ) from None


def _load_service_template(cdk_out: Path) -> ServiceTemplate:
    matches = [
        (stack, template_path)
        for stack, template_path in cloud_assembly_stacks(cdk_out)
        if _function_ids(_resources(template_path))
    ]
    if not matches:
        raise TemplateError(
            f"no stack in {cdk_out} has a Lambda function with handler {contract.HANDLER_ENTRY!r}: "
            "is cdk.out from this project? Run `make synth`"
        )
    # The developer's own stage sits at the top of the app; the pipeline's stages sit one
    # level deeper, inside the pipeline stack's scope. The shallowest copy is the one to run.
    depth = min(_depth(stack) for stack, _ in matches)
    matches = [(stack, path) for stack, path in matches if _depth(stack) == depth]
    if len(matches) > 1:
        names = ", ".join(stack["displayName"] for stack, _ in matches)
        raise TemplateError(f"several stacks hold the ledger function ({names}): expected one")
    stack, template_path = matches[0]
    return _service_template(stack, template_path)


def _depth(stack: dict[str, Any]) -> int:
    return str(stack["displayName"]).count("/")


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `cdk.out`; TemplateError if it is missing, truncated or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{path} is missing: cdk.out is incomplete, run `make synth`") from None
    except (OSError, ValueError) as error:
        raise TemplateError(
            f"{path} is not valid JSON ({error}): cdk.out is corrupted, run `make synth`"
        ) from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path} holds no JSON object: cdk.out is corrupted, run `make synth`")
    return data


def _resources(template_path: Path) -> dict[str, Any]:
    """A template's Resources; every CloudFormation template has some."""
    resources = _read_json(template_path).get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError(
            f"{template_path} has no Resources: cdk.out is corrupted, run `make synth`"
        )
    return resources


def stale_sources(asset_dir: Path, source_root: Path) -> list[str]:
    """The function's source files under `source_root` that differ from the asset's copy.

    The sandbox runs the code in `cdk.out`; a source changed since `make synth` would run
    silently old. Compares content (a checkout changes modification times), over the
    handler package and the top-level modules the asset ships beside it.
    """
    changed = []
    for source in sorted((source_root / contract.HANDLER_PACKAGE).rglob("*.py")):
        relative = source.relative_to(source_root)
        copy = asset_dir / relative
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            changed.append(str(relative))
    for copy in sorted(asset_dir.glob("*.py")):
        source = source_root / copy.name
        if source.is_file() and source.read_bytes() != copy.read_bytes():
            changed.append(copy.name)
    return changed


def cloud_assembly_stacks(
    assembly_dir: Path, _enclosing: tuple[Path, ...] = ()
) -> Iterator[tuple[dict[str, Any], Path]]:
    """Every stack artifact of an assembly and its nested assemblies (one per CDK Stage).

    TemplateError for a nested assembly that is the assembly itself or one around it
    (a corrupted manifest), which would otherwise be read again without end.
    """
    manifest = assembly_dir / "manifest.json"
    enclosing = (*_enclosing, assembly_dir.resolve())
    for name, artifact in _read_json(manifest).get("artifacts", {}).items():
        props = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly":
            nested = assembly_dir / props["directoryName"]
            if nested.resolve() in enclosing:
                raise TemplateError(
                    f"{manifest}: the nested assembly {name} is this assembly or one around "
                    "it: cdk.out is corrupted, run `make synth`"
                )
            yield from cloud_assembly_stacks(nested, enclosing)
        elif artifact.get("type") == "aws:cloudformation:stack":
            info = {
                "name": props.get("stackName", name),
                "displayName": artifact.get("displayName", name),
                "environment": artifact.get("environment", ""),
                "dir": assembly_dir,
            }
            yield info, assembly_dir / props["templateFile"]


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r.get("Type") == kind}


def _function_ids(resources: dict[str, Any]) -> list[str]:
    return [
        lid
        for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
        if r.get("Properties", {}).get("Handler") == contract.HANDLER_ENTRY
    ]


def ref_target(value: Any) -> str | None:
    """The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, "Arn"]}` points at."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
            return get_att[0]
    return None


def _mentions(value: Any, logical_id: str) -> bool:
    """True if an intrinsic anywhere inside `value` refers to `logical_id`."""
    if ref_target(value) == logical_id:
        return True
    if isinstance(value, dict):
        return any(_mentions(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, logical_id) for v in value)
    return False


def _service_template(stack: dict[str, Any], template_path: Path) -> ServiceTemplate:
    resources = _resources(template_path)
    (function_id,) = _function_ids(resources)
    aliases = {
        lid: r["Properties"]
        for lid, r in _of_type(resources, "AWS::Lambda::Alias").items()
        if ref_target(r.get("Properties", {}).get("FunctionName")) == function_id
    }
    bucket_id, target_id, rules = _notification(resources, function_id, set(aliases))
    alias_name = aliases[target_id]["Name"] if target_id in aliases else UNQUALIFIED
    invoke_config = _invoke_config(resources, function_id, target_id, alias_name)
    props = resources[function_id]["Properties"]
    asset_path = resources[function_id].get("Metadata", {}).get("aws:asset:path")
    if not asset_path:
        raise TemplateError(
            f"function {function_id} has no aws:asset:path metadata: synthesize with asset "
            "metadata on (the CDK CLI's default): run `make synth`"
        )
    asset_dir = (stack["dir"] / asset_path).resolve()
    if not (asset_dir / contract.HANDLER_PACKAGE).is_dir():
        raise TemplateError(
            f"the function's asset {asset_dir} has no {contract.HANDLER_PACKAGE}/: "
            "cdk.out is incomplete, run `make synth`"
        )
    destination = invoke_config.get("DestinationConfig", {}).get("OnFailure", {})
    function = FunctionSpec(
        logical_id=function_id,
        handler=props["Handler"],
        asset_dir=asset_dir,
        environment=dict(props.get("Environment", {}).get("Variables", {})),
        timeout_seconds=int(props.get("Timeout", LAMBDA_DEFAULT_TIMEOUT)),
        memory_mb=int(props.get("MemorySize", LAMBDA_DEFAULT_MEMORY)),
        alias_name=alias_name,
        max_retry_attempts=int(
            invoke_config.get("MaximumRetryAttempts", LAMBDA_DEFAULT_RETRY_ATTEMPTS)
        ),
        max_event_age_seconds=int(
            invoke_config.get("MaximumEventAgeInSeconds", LAMBDA_DEFAULT_MAX_EVENT_AGE)
        ),
        failure_queue_id=ref_target(destination.get("Destination")),
    )
    environment = stack["environment"]
    region = environment.rsplit("/", 1)[-1] if environment.startswith("aws://") else None
    return ServiceTemplate(
        stack_name=stack["name"],
        region=None if region in (None, "", "unknown-region") else region,
        resources=resources,
        function=function,
        bucket_id=bucket_id,
        notifications=rules,
        table_ids=tuple(_of_type(resources, "AWS::DynamoDB::Table")),
        assembly_dir=stack["dir"],
    )


def _notification(
    resources: dict[str, Any], function_id: str, alias_ids: set[str]
) -> tuple[str, str, tuple[NotificationRule, ...]]:
    """(bucket id, invoked function-or-alias id, rules) of the notification invoking us."""
    found: dict[tuple[str, str], list[NotificationRule]] = {}
    for resource in _of_type(resources, "Custom::S3BucketNotifications").values():
        props = resource.get("Properties", {})
        bucket_id = ref_target(props.get("BucketName"))
        configs = props.get("NotificationConfiguration", {}).get("LambdaFunctionConfigurations", [])
        for config in configs:
            target = ref_target(config.get("LambdaFunctionArn"))
            if bucket_id and target in alias_ids | {function_id}:
                found.setdefault((bucket_id, str(target)), []).append(_rule(config))
    if not found:
        raise TemplateError(
            f"no S3 bucket notification invokes function {function_id} or its aliases: "
            "is cdk.out from this project? Run `make synth`"
        )
    if len(found) > 1:
        raise TemplateError(f"several notifications invoke the function: {sorted(found)}")
    ((bucket_id, target_id), rules) = found.popitem()
    return bucket_id, target_id, tuple(rules)


def _rule(config: dict[str, Any]) -> NotificationRule:
    filter_rules = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return NotificationRule(
        events=tuple(config.get("Events", [])),
        filter_rules=tuple((r["Name"], r["Value"]) for r in filter_rules),
    )


def _invoke_config(
    resources: dict[str, Any], function_id: str, target_id: str, alias_name: str
) -> dict[str, Any]:
    """The EventInvokeConfig of the qualifier S3 invokes (Lambda's defaults if none)."""
    for resource in _of_type(resources, "AWS::Lambda::EventInvokeConfig").values():
        props: dict[str, Any] = resource.get("Properties", {})
        if ref_target(props.get("FunctionName")) != function_id:
            continue
        qualifier = props.get("Qualifier")
        if qualifier == alias_name or _mentions(qualifier, target_id):
            return props
    return {}


_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def physical_name(stack_name: str, logical_id: str, suffix: str, max_length: int) -> str:
    """A CloudFormation-style generated name: stack-logicalid-suffix, lower case, bounded."""
    base = _NAME_UNSAFE.sub("-", f"{stack_name}-{logical_id}".lower()).strip("-")
    return f"{base[: max_length - len(suffix) - 1]}-{suffix}"


@dataclass(frozen=True)
class Physical:
    """A deployed resource's Ref value and ARN."""

    ref: str
    arn: str


class Resolver:
    """Resolves the intrinsics a template's values may hold to the sandbox's physical names."""

    def __init__(
        self, physical: dict[str, Physical], region: str, account: str, stack_name: str
    ) -> None:
        self._physical = physical
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, value: Any, where: str) -> str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref" and arg in self._pseudo:
                return self._pseudo[arg]
            if name == "Ref" and arg in self._physical:
                return self._physical[arg].ref
            if name == "Fn::GetAtt" and arg[0] in self._physical and arg[1] == "Arn":
                return self._physical[arg[0]].arn
            if name == "Fn::Join":
                separator, parts = arg
                return str(separator).join(self.resolve(p, where) for p in parts)
        raise TemplateError(
            f"{where}: the sandbox can't resolve {json.dumps(value)} (it deploys only the "
            "bucket, table, queues and function; other references need support in "
            "sandbox/template.py)"
        )
