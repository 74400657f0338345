"""Every IAM policy of every synthesized template, checked by parliament.

parliament (https://github.com/duo-labs/parliament) knows each service's actions and
resource types (from AWS's Service Authorization Reference): it reports an action that does
not exist, a resource that matches none of its actions' resource types, a condition key
the action does not support, and more. cdk-nag judges wildcards; this judges whether a
policy means what it says.

Templates hold CloudFormation intrinsics (`Fn::GetAtt`, `Ref`, `Fn::Join`...) where
parliament expects ARNs, so each is first resolved to the ARN AWS would give that
resource (its format comes from the resource type), in the stack's partition, region and
account. A finding is fixed, or acknowledged in ACKNOWLEDGED with its reason.

python -m compliance.policies [cdk.out]   # one line per finding, exits 1 if any
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.regions import partition_of

with warnings.catch_warnings():
    # parliament imports pkg_resources, which warns that it is deprecated.
    warnings.simplefilter("ignore")
    from parliament import analyze_policy_string


@dataclass(frozen=True)
class Acknowledgement:
    """A finding we accept: its issue, which statements and details it covers, and why."""

    issue: str
    applies: Callable[[dict[str, Any], Any], bool]  # (statement, the finding's detail)
    reason: str


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def _through_a_wildcard(statement: dict[str, Any], detail: Any) -> bool:
    # One RESOURCE_MISMATCH detail names one action: granted only by a family (s3:List*).
    written = _actions(statement)
    action = detail["action"] if isinstance(detail, dict) else str(detail)
    return action not in written and any("*" in a for a in written)


def _unknown_condition_through_a_wildcard(statement: dict[str, Any], detail: Any) -> bool:
    action = str(detail).rsplit(" ", 1)[-1]
    return statement.get("Effect") == "Deny" and _through_a_wildcard(statement, action)


def _actions_are(*actions: str) -> Callable[[dict[str, Any], Any], bool]:
    return lambda statement, _: sorted(_actions(statement)) == sorted(actions)


ACKNOWLEDGED: tuple[Acknowledgement, ...] = (
    Acknowledgement(
        "RESOURCE_MISMATCH",
        _through_a_wildcard,
        "The action reaches the statement only through an action family CDK grants (s3:*, "
        "s3:List*, s3:GetObject*...), which also holds actions on other resource types "
        "(access grants, access points); on these buckets and objects they never apply, so "
        "they grant or deny nothing more. cdk-nag's IAM5 acknowledgements cover the families.",
    ),
    Acknowledgement(
        "MISMATCHED_TYPE",
        lambda _, detail: "s3:TlsVersion requires a value of type Numeric" in str(detail),
        "CDK's minimumTLSVersion denies requests with s3:TlsVersion NumericLessThan 1.2, as "
        "the S3 user guide's own example does; IAM's numeric operators take decimals, "
        "parliament's Numeric pattern only integers.",
    ),
    Acknowledgement(
        "UNKNOWN_CONDITION_FOR_ACTION",
        _unknown_condition_through_a_wildcard,
        "The TLS-version Deny covers s3:*; the few S3 actions without s3:TlsVersion "
        "(InitiateReplication, PutAccessPointPublicAccessBlock) are not used on these "
        "buckets (no replication, no access points), and the aws:SecureTransport Deny "
        "still covers them.",
    ),
    Acknowledgement(
        "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        lambda statement, _: "customs3autodeleteobjects" in json.dumps(statement).lower(),
        "CDK's autoDeleteObjects custom resource (only on stages with retainData false) may "
        "change the bucket policy: at stack deletion it denies new writes, then empties the "
        "bucket.",
    ),
    Acknowledgement(
        "RESOURCE_STAR",
        _actions_are("codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"),
        "CDK Pipelines' asset-publishing role starts the asset projects it creates on demand "
        "(acknowledged for cdk-nag in pipeline/compliance.py too).",
    ),
    Acknowledgement(
        "RESOURCE_STAR",
        _actions_are("cloudformation:DescribeStacks", "s3:ListBucket"),
        "CDK Pipelines' self-mutation runs `cdk deploy` of the pipeline stack, which lists "
        "the bootstrap bucket it finds at run time (acknowledged for cdk-nag too).",
    ),
    Acknowledgement(
        "RESOURCE_MISMATCH",
        lambda _, detail: (
            isinstance(detail, dict) and detail["action"] == "codestar-connections:UseConnection"
        ),
        "CodeStar Connections was renamed CodeConnections; AWS accepts the old action prefix "
        "on a connection's new codeconnections ARN (CodeConnections user guide, service "
        "prefix change). CDK Pipelines grants it so.",
    ),
    Acknowledgement(
        "RESOURCE_MISMATCH",
        lambda _, detail: (
            isinstance(detail, dict)
            and detail["action"] == "codedeploy:PutLifecycleEventHookExecutionStatus"
        ),
        "CDK grants the pre-traffic hook this action on its own deployment group only "
        "(LambdaDeploymentGroup preHook), as CodeDeploy's permissions reference lists it; "
        "parliament's definitions allow only '*', which would let the hook report on any "
        "deployment.",
    ),
)

# Where each resource type's policy documents are.
POLICY_PROPERTIES = {
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
}
# The ARN AWS gives a resource of each type ({name} is a stand-in for its physical name).
ARN_FORMATS = {
    "AWS::S3::Bucket": "arn:{p}:s3:::{name}",
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{name}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{name}",
    "AWS::Lambda::Version": "arn:{p}:lambda:{r}:{a}:function:{name}:1",
    "AWS::Lambda::Alias": "arn:{p}:lambda:{r}:{a}:function:{name}:live",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{name}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{name}",
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{name}",
    "AWS::IAM::ManagedPolicy": "arn:{p}:iam::{a}:policy/{name}",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{name}",
    "AWS::KMS::Alias": "arn:{p}:kms:{r}:{a}:alias/{name}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{name}:*",
    "AWS::CodeBuild::Project": "arn:{p}:codebuild:{r}:{a}:project/{name}",
    "AWS::CodePipeline::Pipeline": "arn:{p}:codepipeline:{r}:{a}:{name}",
    "AWS::CloudWatch::Alarm": "arn:{p}:cloudwatch:{r}:{a}:alarm:{name}",
    "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{name}",
    "AWS::CodeDeploy::Application": "arn:{p}:codedeploy:{r}:{a}:application:{name}",
    "AWS::CodeDeploy::DeploymentGroup": "arn:{p}:codedeploy:{r}:{a}:deploymentgroup:app/{name}",
}
# Types whose `Ref` is their ARN (for the others it is the physical name or id).
REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::IAM::ManagedPolicy",
}


@dataclass(frozen=True, order=True)
class PolicyFinding:
    """One parliament finding in one policy of one template."""

    template: str
    resource: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.issue} in {self.template} {self.resource}: {self.detail}"


@dataclass(frozen=True)
class StackEnvironment:
    """Where a template deploys: what its pseudo parameters stand for."""

    partition: str
    region: str
    account: str


class Resolver:
    """Replaces a template's intrinsics with the values they take in `env`."""

    def __init__(self, template: dict[str, Any], env: StackEnvironment) -> None:
        self._resources: dict[str, Any] = template.get("Resources", {})
        self._env = env
        self._pseudo = {
            "AWS::Partition": env.partition,
            "AWS::Region": env.region,
            "AWS::AccountId": env.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "stack",
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = getattr(self, "_" + key.replace("Fn::", "fn_").lower(), None)
            if handler is not None:
                return handler(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        kind = self._resources.get(name, {}).get("Type", "")
        if kind in REF_IS_ARN:
            return self._arn(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self._env.region}.amazonaws.com/{self._env.account}/{name}"
        return name.lower()

    def _fn_getatt(self, argument: Any) -> str:
        name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        if str(attribute).endswith("Arn"):
            return self._arn(str(name))
        return str(name).lower()

    def _arn(self, name: str) -> str:
        kind = self._resources.get(name, {}).get("Type", "")
        form = ARN_FORMATS.get(kind, "arn:{p}:unknown-resource-type:{r}:{a}:{name}")
        env = self._env
        return form.format(p=env.partition, r=env.region, a=env.account, name=name.lower())

    def _fn_join(self, argument: list[Any]) -> str:
        separator, parts = argument
        return str(separator).join(str(self.resolve(part)) for part in self.resolve(parts))

    def _fn_sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self._fn_getatt(name)
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _fn_select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(index)]

    def _fn_split(self, argument: list[Any]) -> list[str]:
        separator, text = argument
        return str(self.resolve(text)).split(separator)

    def _fn_importvalue(self, argument: Any) -> str:
        return f"imported-{self.resolve(argument)}"


def stack_templates(assembly: Path) -> Iterator[tuple[Path, StackEnvironment]]:
    """Every stack template of a cloud assembly (nested stage assemblies included)."""
    manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly":
            yield from stack_templates(assembly / properties["directoryName"])
        elif artifact.get("type") == "aws:cloudformation:stack":
            account, region = artifact["environment"].removeprefix("aws://").split("/")
            env = StackEnvironment(partition_of(region) or "aws", region, account)
            yield assembly / properties["templateFile"], env


def policy_statements(
    template: dict[str, Any], resolver: Resolver
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) for every statement of every policy a template defines,
    resolved, with the resource a resource policy leaves implicit made explicit."""
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {})
        documents = [
            properties[name] for name in POLICY_PROPERTIES.get(kind, ()) if name in properties
        ]
        if kind == "AWS::IAM::Role":
            documents += [inline["PolicyDocument"] for inline in properties.get("Policies", [])]
        for document in documents:
            for statement in resolver.resolve(document).get("Statement", []):
                yield logical_id, _explicit_resource(kind, logical_id, statement, resolver)


def _explicit_resource(
    kind: str, logical_id: str, statement: dict[str, Any], resolver: Resolver
) -> dict[str, Any]:
    # A role's trust policy is a resource policy on the role, without a Resource element;
    # in a key policy, "*" means "this key" (KMS developer guide, "Key policies").
    if kind == "AWS::IAM::Role" and "Resource" not in statement:
        return {**statement, "Resource": resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]})}
    if kind == "AWS::KMS::Key" and statement.get("Resource") == "*":
        return {**statement, "Resource": resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]})}
    return statement


def check_assembly(assembly: Path) -> list[PolicyFinding]:
    """parliament's findings over every policy of every template, minus ACKNOWLEDGED."""
    findings = set()
    for path, env in stack_templates(assembly):
        template = json.loads(path.read_text(encoding="utf-8"))
        for logical_id, statement in policy_statements(template, Resolver(template, env)):
            # One statement at a time, so each finding is judged with its own statement.
            document = {"Version": "2012-10-17", "Statement": [statement]}
            policy = analyze_policy_string(json.dumps(_numbers_as_strings(document)))
            for finding in policy.findings:
                for detail in _details(finding):
                    if not _acknowledged(finding.issue, statement, detail):
                        findings.add(
                            PolicyFinding(path.name, logical_id, finding.issue, json.dumps(detail))
                        )
    return sorted(findings)


def _details(finding: Any) -> list[Any]:
    # A RESOURCE_MISMATCH lists every action without a matching resource: judge each.
    detail = finding.detail
    return detail if finding.issue == "RESOURCE_MISMATCH" and isinstance(detail, list) else [detail]


def _numbers_as_strings(value: Any) -> Any:
    # IAM reads a condition's JSON number (s3:TlsVersion 1.2) as its string; parliament
    # only takes strings.
    if isinstance(value, dict):
        return {key: _numbers_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_strings(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _acknowledged(issue: str, statement: dict[str, Any], detail: Any) -> bool:
    return any(a.issue == issue and a.applies(statement, detail) for a in ACKNOWLEDGED)


def main(argv: list[str]) -> int:
    assembly = Path(argv[0] if argv else "cdk.out")
    if not (assembly / "manifest.json").exists():
        print(f"No cloud assembly in {assembly}: run make synth first.", file=sys.stderr)
        return 2
    findings = check_assembly(assembly)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} unacknowledged IAM policy finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
