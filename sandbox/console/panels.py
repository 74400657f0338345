"""What the console lists beside the dashboard: the template's alarms, the outbox, the ledger."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sandbox.console.deployed import ALARM_TYPE, alarm_name
from sandbox.console.page import AlarmStatus, Notification
from sandbox.template import ServiceTemplate

_RUNBOOK = re.compile(r"Runbook:\s*(?P<url>\S+)")
NOT_EVALUATED = "INSUFFICIENT_DATA"

# name -> (state, reason, updated ISO time): what an alarm evaluator reports.
AlarmStates = Mapping[str, tuple[str, str, str]]


def template_alarms(
    template: ServiceTemplate, states: Callable[[], AlarmStates] | None = None
) -> list[AlarmStatus]:
    """Every alarm of the service template, with its state from `states` when given.

    Without an evaluator an alarm is INSUFFICIENT_DATA, as CloudWatch shows a new alarm,
    and its reason says that nothing evaluated it.
    """
    known = states() if states is not None else {}
    alarms = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != ALARM_TYPE:
            continue
        name = alarm_name(logical_id, resource)
        description = str(resource.get("Properties", {}).get("AlarmDescription", ""))
        runbook = _RUNBOOK.search(description)
        state, reason, updated = known.get(
            name, (NOT_EVALUATED, "Not evaluated: this sandbox runs no alarm evaluation", "")
        )
        alarms.append(
            AlarmStatus(
                name=name,
                state=state,
                reason=reason,
                runbook_url=runbook.group("url").rstrip(".") if runbook else "",
                description=description,
                updated=updated,
            )
        )
    return sorted(alarms, key=lambda alarm: alarm.name)


def read_outbox(outbox: Path) -> list[Notification]:
    """The outbox's messages, oldest first (files sort by name: the drill names them in order)."""
    if not outbox.is_dir():
        return []
    return [_notification(path) for path in sorted(outbox.iterdir()) if path.is_file()]


def _notification(path: Path) -> Notification:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        message: Any = json.loads(text)
    except json.JSONDecodeError:
        subject = next((line for line in text.splitlines() if line.strip()), path.name)
        return Notification(path.name, subject.removeprefix("Subject: "), text)
    if not isinstance(message, dict):
        return Notification(path.name, path.name, text)
    subject = message.get("Subject") or _inner(message).get("AlarmName") or path.name
    return Notification(path.name, str(subject), json.dumps(message, indent=2))


def _inner(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """The CloudWatch alarm document inside an SNS envelope's Message, if it is one."""
    inner = message.get("Message", message)
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except json.JSONDecodeError:
            return {}
    return inner if isinstance(inner, dict) else {}
