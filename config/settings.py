"""Typed, validated configuration read from `cdk.json` context (or `cdk -c key=value`).

Every problem raises `ConfigError`, whose message names the key, says what is wrong and
how to fix it. Pipeline keys are read only when the pipeline is built, so the stage
stacks synthesize without them (a developer deploying a personal stage needs none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_RE = re.compile(r"^[^\s~^:?*\[\\]+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONNECTION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[\w-]+$"
)
# How a value is looked up: `app.node.try_get_context`, or a dict's `get` in tests.
ContextLookup = Callable[[str], Any]

CONNECTION_ARN_EXAMPLE = "arn:aws:codeconnections:REGION:ACCOUNT:connection/CONNECTION_ID"


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"cdk.json context '{key}': {problem}. {fix}")
        self.key = key


@dataclass(frozen=True)
class StageConfig:
    """One deployment target: an account, a region and how carefully to treat it."""

    name: str
    account: str
    region: str
    manual_approval: bool = False
    # Production data is kept when a stack is deleted; a throwaway dev stage may opt out.
    retain_data: bool = True
    # None leaves the function in the account's unreserved pool (new accounts have too
    # little concurrency to reserve any); set it to cap the write rate on the table.
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline lives and what it watches."""

    repository: str
    branch: str
    connection_arn: str
    account: str
    region: str
    stages: tuple[StageConfig, ...]


@dataclass(frozen=True)
class AppConfig:
    """Everything the app reads from context, validated."""

    dev_stage: StageConfig
    alarm_emails: tuple[str, ...]
    repository: str
    branch: str


class ContextReader:
    """Reads typed values from a context mapping, with errors that say how to fix them."""

    def __init__(self, lookup: ContextLookup, parent: str = "") -> None:
        self._lookup = lookup
        # Inside a stage object, errors name the full path (stages[1].region) but the
        # fix names the top-level key, which is what the user sets.
        self._parent = parent

    def name(self, key: str) -> str:
        return f"{self._parent}.{key}" if self._parent else key

    def error(self, key: str, problem: str, example: str | None = None) -> ConfigError:
        full = self.name(key)
        top = re.split(r"[.\[]", full, maxsplit=1)[0]
        return ConfigError(full, problem, _fix(top, example if full == top else None))

    def raw(self, key: str) -> Any:
        value = self._lookup(key)
        # `cdk -c key=value` passes strings: accept JSON there for lists and objects.
        if isinstance(value, str) and value[:1] in "[{":
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise self.error(key, f"is not valid JSON ({error.msg})") from error
        return value

    def string(self, key: str, pattern: re.Pattern[str], example: str) -> str:
        value = self.raw(key)
        if value is None or value == "":
            raise self.error(key, "is missing", example)
        if not isinstance(value, str) or not pattern.match(value):
            raise self.error(key, f"{value!r} is not of the form {example}", example)
        return value

    def emails(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(key, "must be a list of e-mail addresses", '["oncall@example.com"]')
        for item in value:
            if not isinstance(item, str) or not EMAIL_RE.match(item):
                raise self.error(
                    key, f"{item!r} is not an e-mail address", '["oncall@example.com"]'
                )
        return tuple(value)

    def stage(self, key: str, value: Any) -> StageConfig:
        example = '{"name": "staging", "account": "111111111111", "region": "eu-central-1"}'
        if not isinstance(value, dict):
            raise self.error(key, "must be an object with name, account and region", example)
        inner = ContextReader(value.get, parent=self.name(key))
        return StageConfig(
            name=inner.string("name", STAGE_NAME_RE, "lower-case letters, digits and '-'"),
            account=inner.string("account", ACCOUNT_RE, "a 12-digit account id"),
            region=inner.string("region", REGION_RE, "eu-central-1"),
            manual_approval=inner.boolean("manualApproval", default=False),
            retain_data=inner.boolean("retainData", default=True),
            reserved_concurrency=inner.optional_positive_int("reservedConcurrency"),
        )

    def stages(self, key: str) -> tuple[StageConfig, ...]:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "must be a non-empty list of stages")
        stages = tuple(self.stage(f"{key}[{index}]", item) for index, item in enumerate(value))
        names = [stage.name for stage in stages]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise self.error(key, f"stage names must be unique, repeated: {duplicated}")
        return stages

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise self.error(key, f"{value!r} is not true or false", "true")

    def optional_positive_int(self, key: str) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(key, f"{value!r} is not a positive whole number", "10")
        return value


def _fix(key: str, example: str | None = None) -> str:
    shown = f" (for example {example})" if example else ""
    return f'Set "{key}" under "context" in cdk.json, or pass -c {key}=VALUE{shown}.'


def load_app_config(lookup: ContextLookup) -> AppConfig:
    """What every synth needs: the directly deployable stage and the alarm recipients."""
    reader = ContextReader(lookup)
    return AppConfig(
        dev_stage=reader.stage("devStage", reader.raw("devStage")),
        alarm_emails=reader.emails("alarmEmails"),
        repository=reader.string("githubRepository", REPOSITORY_RE, "owner/repository"),
        branch=reader.string("githubBranch", BRANCH_RE, "main"),
    )


PIPELINE_SWITCH = "pipeline"
DEV_ONLY_HINT = (
    "To synthesize or deploy only your own stage (devStage) without the pipeline, "
    f"pass -c {PIPELINE_SWITCH}=false."
)


def wants_pipeline(lookup: ContextLookup) -> bool:
    """The app builds the pipeline unless told not to (`-c pipeline=false`)."""
    return ContextReader(lookup).boolean(PIPELINE_SWITCH, default=True)


def load_pipeline_config(lookup: ContextLookup) -> PipelineConfig:
    """What the pipeline needs on top: the connection, its home and the stages it deploys."""
    reader = ContextReader(lookup)
    try:
        return _read_pipeline_config(reader)
    except ConfigError as error:
        # A developer who only wants their own stage should not have to fix this.
        error.add_note(DEV_ONLY_HINT)
        raise


def _read_pipeline_config(reader: ContextReader) -> PipelineConfig:
    return PipelineConfig(
        repository=reader.string("githubRepository", REPOSITORY_RE, "owner/repository"),
        branch=reader.string("githubBranch", BRANCH_RE, "main"),
        connection_arn=reader.string(
            "githubConnectionArn", CONNECTION_ARN_RE, CONNECTION_ARN_EXAMPLE
        ),
        account=reader.string("pipelineAccount", ACCOUNT_RE, "a 12-digit account id"),
        region=reader.string("pipelineRegion", REGION_RE, "eu-central-1"),
        stages=reader.stages("stages"),
    )


CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's context, for runs outside the CDK CLI (`python app.py`, tests, sandbox)."""
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context
