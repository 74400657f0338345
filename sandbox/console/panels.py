"""What the console lists beside the dashboard: the template's alarms, the outbox, the ledger."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.alarms import (
    INSUFFICIENT_DATA,
    AlarmDefinition,
    UnsupportedAlarmError,
    evaluate,
    read_alarm,
)
from sandbox.console.dashboard import Attributes, BodyResolver
from sandbox.console.deployed import ALARM_TYPE, alarm_name
from sandbox.console.page import AlarmStatus, Notification
from sandbox.metric_math import ExpressionError
from sandbox.metrics import MetricStore
from sandbox.template import ServiceTemplate, TemplateError

_RUNBOOK = re.compile(r"Runbook:\s*(?P<url>\S+)")


class AlarmBoard:
    """The template's alarms, evaluated with the alarms' evaluator (sandbox.alarms) each time
    the console asks, remembering each state between asks as CloudWatch does.

    An alarm the evaluator can't read (an unsupported statistic or function) is listed as
    INSUFFICIENT_DATA with the evaluator's reason, never hidden. Alarms start in
    `initial_state`: INSUFFICIENT_DATA for a freshly deployed sandbox (a new CloudWatch alarm),
    the drill's OK for a drill's snapshot, so the reason names the same transition as the
    drill's e-mails. As CloudWatch's StateReason, the reason is the last state change's.
    """

    def __init__(
        self,
        template: ServiceTemplate,
        physical: Mapping[str, Attributes],
        pseudo: Mapping[str, str],
        store: MetricStore,
        clock: Callable[[], float] = time.time,
        *,
        initial_state: str = INSUFFICIENT_DATA,
    ) -> None:
        resolver = BodyResolver(physical, {}, pseudo)
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._alarms: list[AlarmDefinition] = []
        self._unreadable: dict[str, tuple[str, str]] = {}  # name -> (description, why)
        for logical_id, resource in template.resources.items():
            if resource.get("Type") != ALARM_TYPE:
                continue
            properties = resource.get("Properties", {})
            try:
                self._alarms.append(
                    read_alarm(logical_id, properties, lambda value, _: resolver.resolve(value))
                )
            except (UnsupportedAlarmError, TemplateError) as error:
                name = alarm_name(logical_id, resource)
                description = str(properties.get("AlarmDescription", ""))
                self._unreadable[name] = (description, f"Not evaluated: {error}")
        # name -> (state, when it changed, the reason of that change)
        self._states = {alarm.name: (initial_state, "", "") for alarm in self._alarms}

    def statuses(self) -> list[AlarmStatus]:
        """Every alarm's state as of now, sorted by name."""
        now = self._clock()
        listed = [
            AlarmStatus(name, INSUFFICIENT_DATA, why, runbook_url(description), description)
            for name, (description, why) in self._unreadable.items()
        ]
        with self._lock:
            for alarm in self._alarms:
                old_state, changed, reason = self._states[alarm.name]
                try:
                    evaluation = evaluate(alarm, self._store, now, old_state)
                except (UnsupportedAlarmError, ExpressionError, ValueError) as error:
                    listed.append(
                        AlarmStatus(
                            alarm.name,
                            INSUFFICIENT_DATA,
                            f"Not evaluated: {error}",
                            runbook_url(alarm.description),
                            alarm.description,
                        )
                    )
                    continue
                if evaluation.state != old_state or not reason:
                    changed = _iso(now) if evaluation.state != old_state else changed
                    reason = evaluation.reason
                self._states[alarm.name] = (evaluation.state, changed, reason)
                listed.append(
                    AlarmStatus(
                        alarm.name,
                        evaluation.state,
                        reason,
                        runbook_url(alarm.description),
                        alarm.description,
                        changed,
                    )
                )
        return sorted(listed, key=lambda status: status.name)


def runbook_url(description: str) -> str:
    """The runbook link an alarm's description names ("... Runbook: URL")."""
    found = _RUNBOOK.search(description)
    return found.group("url").rstrip(".") if found else ""


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
