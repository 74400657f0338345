"""What the sandbox deployed, as the intrinsics of the stage's templates see it.

The dashboard and the alarms name the service's resources through `Ref` and `Fn::GetAtt`;
this maps the ServiceStack's logical ids to the sandbox's physical names and ARNs.
"""

from __future__ import annotations

from typing import Any, Protocol

from sandbox.console.dashboard import Attributes
from sandbox.template import ServiceTemplate, ref_target

ALARM_TYPE = "AWS::CloudWatch::Alarm"
ALIAS_TYPE = "AWS::Lambda::Alias"
VERSION_TYPE = "AWS::Lambda::Version"
TOPIC_TYPE = "AWS::SNS::Topic"


class DeployedService(Protocol):
    """The sandbox's names for what it deployed (sandbox.Sandbox has these attributes)."""

    template: ServiceTemplate
    region: str
    account: str
    bucket_name: str
    table_name: str
    function_name: str
    failure_queue_url: str
    current_version: str


def deployed_attributes(sb: DeployedService) -> dict[str, Attributes]:
    """Logical id -> Ref value and attributes, for every resource the dashboard may name."""
    template = sb.template
    arn = f"arn:aws:lambda:{sb.region}:{sb.account}:function:{sb.function_name}"
    found: dict[str, Attributes] = {
        template.bucket_id: Attributes(sb.bucket_name, {"Arn": f"arn:aws:s3:::{sb.bucket_name}"}),
        template.function.logical_id: Attributes(sb.function_name, {"Arn": arn}),
    }
    for table_id in template.table_ids:
        found[table_id] = Attributes(
            sb.table_name,
            {"Arn": f"arn:aws:dynamodb:{sb.region}:{sb.account}:table/{sb.table_name}"},
        )
    if template.function.failure_queue_id and sb.failure_queue_url:
        queue_name = sb.failure_queue_url.rstrip("/").rsplit("/", 1)[-1]
        found[template.function.failure_queue_id] = Attributes(
            sb.failure_queue_url,
            {
                "QueueName": queue_name,
                "Arn": f"arn:aws:sqs:{sb.region}:{sb.account}:{queue_name}",
            },
        )
    for logical_id, resource in template.resources.items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == ALIAS_TYPE:
            alias_arn = f"{arn}:{properties.get('Name', '')}"
            found[logical_id] = Attributes(alias_arn, {"AliasArn": alias_arn})
        elif resource.get("Type") == VERSION_TYPE and (
            ref_target(properties.get("FunctionName")) == template.function.logical_id
        ):
            # The template's current version: the version deployed (or being released).
            version = sb.current_version
            found[logical_id] = Attributes(f"{arn}:{version}", {"Version": version})
        elif resource.get("Type") == TOPIC_TYPE:
            # The alarms' actions name the topic; the console only shows them.
            topic = properties.get("TopicName")
            topic_name = topic if isinstance(topic, str) else logical_id
            topic_arn = f"arn:aws:sns:{sb.region}:{sb.account}:{topic_name}"
            found[logical_id] = Attributes(topic_arn, {"TopicName": topic_name})
        elif resource.get("Type") == ALARM_TYPE:
            name = alarm_name(logical_id, resource)
            alarm_arn = f"arn:aws:cloudwatch:{sb.region}:{sb.account}:alarm:{name}"
            found[logical_id] = Attributes(name, {"Arn": alarm_arn})
    return found


def alarm_name(logical_id: str, resource: dict[str, Any]) -> str:
    """The alarm's AlarmName, or the logical id when CloudFormation would generate one."""
    name = resource.get("Properties", {}).get("AlarmName")
    return name if isinstance(name, str) else logical_id


def pseudo_parameters(sb: DeployedService) -> dict[str, str]:
    return {
        "AWS::Region": sb.region,
        "AWS::AccountId": sb.account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
