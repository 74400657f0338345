"""The outbox: every message the alarm topic sends, one JSON file each, as e-mail delivers it.

What lands here is what an on-call engineer subscribed to the alarm topic receives:
CloudWatch's alarm state changes (ALARM and OK) and what the template's EventBridge rule
forwards when a deployment fails or is stopped. The drill writes it; the console reads it.

Format (stable: the console and tests read it). Directory `.sandbox/outbox/`, one file
per message, named `<UTC time YYYYMMDDTHHMMSSZ>-<sequence, 4 digits>-<source>.json`, so
a plain sort is the order they were sent. The directory holds one drill's messages: a
drill starts by clearing the messages an earlier one left (:meth:`Outbox.clear`, only
files named so), and numbers its own from 0001, so a sequence number is unique in it.
Each file holds the SNS notification as SNS delivers it to an HTTP/SQS subscriber, plus
who sent it:

    {
      "Type": "Notification",
      "MessageId": "<uuid>",
      "TopicArn": "arn:aws:sns:<region>:<account>:<topic>",
      "Subject": "ALARM: \\"<alarm name>\\" in EU (Frankfurt)" | null,
      "Message": "<the message body, a string>",
      "Timestamp": "2026-11-30T12:05:00.000Z",     # simulated time in a drill
      "Source": "cloudwatch" | "eventbridge"
    }

For `cloudwatch` the Message is the alarm JSON (AlarmName, AlarmDescription with its
runbook link, NewStateValue, NewStateReason, StateChangeTime, OldStateValue, Trigger...);
for `eventbridge` it is what the rule's input transformer produced.
:func:`render_email` prints a message as the e-mail looks.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLOUDWATCH, EVENTBRIDGE = "cloudwatch", "eventbridge"
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}


def region_name(region: str) -> str:
    """The Region's name as CloudWatch writes it in alarm messages (the code if unknown)."""
    return REGION_NAMES.get(region, region)


@dataclass(frozen=True)
class Notification:
    """One message the topic sent."""

    topic_arn: str
    subject: str | None
    message: str
    timestamp: float  # epoch seconds
    source: str
    message_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "Type": "Notification",
            "MessageId": self.message_id,
            "TopicArn": self.topic_arn,
            "Subject": self.subject,
            "Message": self.message,
            "Timestamp": datetime.fromtimestamp(self.timestamp, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )[:-3]
            + "Z",
            "Source": self.source,
        }


class Outbox:
    """Writes each notification to its own file; `sns`, when given, publishes it too."""

    def __init__(self, directory: Path, sns: Any = None) -> None:
        self.directory = directory
        self._sns = sns
        self._sequence = itertools.count(1)
        self.sent: list[Notification] = []

    def clear(self) -> int:
        """Remove the messages an earlier run left (only files named as this outbox names
        them, so other files in a chosen --outbox directory stay); how many were removed."""
        removed = 0
        for source in (CLOUDWATCH, EVENTBRIDGE):
            for path in self.directory.glob(f"*-*-{source}.json"):
                path.unlink()
                removed += 1
        return removed

    def send(
        self, topic_arn: str, message: str, *, subject: str | None, timestamp: float, source: str
    ) -> Path:
        message_id = str(uuid.uuid4())
        if self._sns is not None:
            extra = {"Subject": subject} if subject else {}
            message_id = self._sns.publish(TopicArn=topic_arn, Message=message, **extra)[
                "MessageId"
            ]
        notification = Notification(topic_arn, subject, message, timestamp, source, message_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"{stamp}-{next(self._sequence):04d}-{source}.json"
        path.write_text(json.dumps(notification.to_json(), indent=2) + "\n", encoding="utf-8")
        self.sent.append(notification)
        return path


def read_outbox(directory: Path) -> Iterator[dict[str, Any]]:
    """Every notification in an outbox directory, in the order they were sent."""
    for path in sorted(directory.glob("*.json")):
        notification: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        yield notification


def render_email(notification: Notification, region: str) -> str:
    """The notification as the subscriber's e-mail shows it."""
    subject = notification.subject or "AWS Notification Message"
    header = f"Subject: {subject}\nFrom: AWS Notifications <no-reply@sns.amazonaws.com>\n"
    if notification.source != CLOUDWATCH:
        return f"{header}\n{notification.message}\n"
    alarm = json.loads(notification.message)
    trigger = alarm.get("Trigger", {})
    what = (
        f"{trigger.get('Namespace')} {trigger.get('MetricName')} "
        f"{trigger.get('ExtendedStatistic') or trigger.get('Statistic')}"
        if "MetricName" in trigger
        else " ".join(m["Expression"] for m in trigger.get("Metrics", []) if "Expression" in m)
    )
    return (
        f"{header}\n"
        f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm["AlarmName"]}" '
        f"in the {alarm['Region']} region has entered the {alarm['NewStateValue']} state, because "
        f'"{alarm["NewStateReason"]}" at "{alarm["StateChangeTime"]}".\n\n'
        f"View this alarm in the AWS Management Console:\n"
        f"https://{region}.console.aws.amazon.com/cloudwatch/deeplink.js?region={region}"
        f"#alarmsV2:alarm/{alarm['AlarmName']}\n\n"
        f"Alarm Details:\n"
        f"- Name:                       {alarm['AlarmName']}\n"
        f"- Description:                {alarm['AlarmDescription']}\n"
        f"- State Change:               {alarm['OldStateValue']} -> {alarm['NewStateValue']}\n"
        f"- Reason for State Change:    {alarm['NewStateReason']}\n"
        f"- Timestamp:                  {alarm['StateChangeTime']}\n"
        f"- AWS Account:                {alarm['AWSAccountId']}\n"
        f"- Alarm Arn:                  {alarm['AlarmArn']}\n\n"
        f"Threshold:\n"
        f"- The alarm is in the ALARM state when the metric is {trigger.get('ComparisonOperator')} "
        f"{trigger.get('Threshold')} for at least {trigger.get('DatapointsToAlarm')} of the last "
        f"{trigger.get('EvaluationPeriods')} period(s) of {trigger.get('Period')} seconds.\n\n"
        f"Monitored Metric: {what}\n\n"
        f"State Change Actions:\n"
        f"- OK: {alarm['OKActions']}\n"
        f"- ALARM: {alarm['AlarmActions']}\n"
        f"- INSUFFICIENT_DATA: {alarm['InsufficientDataActions']}\n"
    )
