"""Typed, validated configuration read from `cdk.json` context (or `cdk -c key=value`).

Every problem raises `ConfigError`, whose message says where the value came from
(cdk.json or -c), what is wrong and how to fix it, with an example that is itself valid.
Pipeline keys are read only when the pipeline is built, so the stage stacks synthesize
without them (a developer deploying a personal stage needs none).

What is checked:
- every object the project reads (its top-level keys, each of `stages[]`, `devStage`)
  rejects keys it does not know, with "did you mean" for a near miss; CDK's own context
  (feature flags `@aws-cdk/...`, `aws:cdk:...`, lookups, `cli-telemetry`) is left alone;
- accounts are 12-digit strings (a JSON number would lose leading zeros), regions have
  the shape of a region in one of AWS's partitions, and a pipeline deploys only within
  its own partition;
- no two stages, the developer's `devStage` included, share a stack name.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import contract
from config.regions import EXAMPLE_REGIONS, partition_of

ACCOUNT_RE = re.compile(r"^\d{12}$")
STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_RE = re.compile(r"^[^\s~^:?*\[\\]+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONNECTION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[\w-]+$"
)

# Examples shown in messages: each is a valid value (a test validates every one).
ACCOUNT_EXAMPLE = "111111111111"
REGION_EXAMPLE = EXAMPLE_REGIONS["aws"]
STAGE_NAME_EXAMPLE = "staging"
REPOSITORY_EXAMPLE = "example-org/upload-ledger"
BRANCH_EXAMPLE = "main"
EMAILS_EXAMPLE = '["oncall@example.com"]'
CONNECTION_ARN_EXAMPLE = (
    "arn:aws:codeconnections:eu-central-1:111111111111:connection/"
    "00000000-0000-0000-0000-000000000000"
)
STAGE_EXAMPLE = '{"name": "staging", "account": "111111111111", "region": "eu-central-1"}'
DEV_STAGE_EXAMPLE = '{"name": "dev", "account": "111111111111", "region": "eu-central-1"}'
# The account id committed in cdk.json: not anyone's account (see `placeholder_problems`).
PLACEHOLDER_ACCOUNT = "111111111111"

PIPELINE_SWITCH = "pipeline"
DEV_ONLY_HINT = (
    "To synthesize or deploy only your own stage (devStage) without the pipeline, "
    f"pass -c {PIPELINE_SWITCH}=false."
)

# The keys this project reads, per object. Anything else in them is a mistake.
TOP_LEVEL_KEYS = (
    "githubRepository",
    "githubBranch",
    "githubConnectionArn",
    "pipelineAccount",
    "pipelineRegion",
    "stages",
    "devStage",
    "alarmEmails",
    PIPELINE_SWITCH,
)
STAGE_KEYS = ("name", "account", "region", "manualApproval", "retainData", "reservedConcurrency")
# The developer's stage is deployed by `make deploy`, never by the pipeline: no approval.
DEV_STAGE_KEYS = tuple(key for key in STAGE_KEYS if key != "manualApproval")
# CDK's own context keys without a ':' or a leading '@' (those are all CDK's: feature
# flags, `aws:cdk:*` and context lookups such as `availability-zones:account=...`).
CDK_CONTEXT_KEYS = ("cli-telemetry", "acknowledged-issue-numbers")

# How a value is looked up: `app.node.try_get_context`, or a dict's `get` in tests.
ContextLookup = Callable[[str], Any]

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPOSITORY_ROOT / "cdk.json"
CDK_CONTEXT_JSON = REPOSITORY_ROOT / "cdk.context.json"


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""

    def __init__(self, key: str, problem: str, fix: str, origin: str | None = None) -> None:
        # `origin` is the file the value came from, "-c", or None when it is not set.
        if origin == "-c":
            where = f"From -c, context '{key}'"
        else:
            where = f"{origin} context '{key}'" if origin else f"context '{key}'"
        stop = "" if problem.endswith("?") else "."
        super().__init__(f"{where}: {problem}{stop} {fix}")
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

    @property
    def partition(self) -> str:
        """The AWS partition of the stage's region (`aws`, `aws-cn`, `aws-eusc`...)."""
        return partition_of(self.region) or "aws"


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


class Context:
    """The context values and where each came from: cdk.json (or cdk.context.json) or -c.

    `values` is what the CDK app sees (cdk.json's context merged with -c). A value equal
    to cdk.json's is from cdk.json; any other one was passed on the command line.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        files: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._values = dict(values)
        self._files = dict(files) if files is not None else committed_context_files()

    def get(self, key: str) -> Any:
        return self._values.get(key)

    def names(self) -> Iterable[str]:
        return self._values.keys()

    def origin(self, key: str) -> str | None:
        """`cdk.json`, `cdk.context.json`, `-c` or None (not set)."""
        if key not in self._values:
            return None
        for name, values in self._files.items():
            if key in values and values[key] == self._values[key]:
                return name
        return "-c"


def as_context(source: Context | Mapping[str, Any] | ContextLookup) -> Context:
    """A `Context` from a mapping or a bare look-up (then every key's origin is unknown)."""
    if isinstance(source, Context):
        return source
    if isinstance(source, Mapping):
        return Context(source)
    return _LookupContext(source)


class _LookupContext(Context):
    # Only `get` is known: keys cannot be listed, so unknown top-level keys go unchecked.
    def __init__(self, lookup: ContextLookup) -> None:
        super().__init__({}, files={})
        self._lookup = lookup

    def get(self, key: str) -> Any:
        return self._lookup(key)

    def origin(self, key: str) -> str | None:
        return None


class ContextReader:
    """Reads typed values from one context object, with errors that say how to fix them."""

    def __init__(
        self,
        lookup: ContextLookup,
        parent: str = "",
        origins: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        self._lookup = lookup
        # Inside a stage object, errors name the full path (stages[1].region) but the
        # fix names the top-level key, which is what the user sets.
        self._parent = parent
        self._origins = origins

    @classmethod
    def of(cls, context: Context) -> ContextReader:
        return cls(context.get, origins=context.origin)

    def name(self, key: str) -> str:
        return f"{self._parent}.{key}" if self._parent else key

    def error(
        self, key: str, problem: str, example: str | None = None, fix: str | None = None
    ) -> ConfigError:
        full = self.name(key)
        top = re.split(r"[.\[]", full, maxsplit=1)[0]
        origin = self._origins(top)
        shown = f" (for example {example})" if example and full != top else ""
        return ConfigError(
            full,
            problem + shown,
            fix or _fix(top, example if full == top else None),
            origin,
        )

    def raw(self, key: str) -> Any:
        value = self._lookup(key)
        # `cdk -c key=value` passes strings: accept JSON there for lists and objects.
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise self.error(key, f"is not valid JSON ({error.msg})") from error
        return value

    def string(self, key: str, pattern: re.Pattern[str], what: str, example: str) -> str:
        value = self.raw(key)
        if value is None or value == "":
            raise self.error(key, "is missing", example)
        if not isinstance(value, str) or not pattern.match(value):
            raise self.error(key, f"{value!r} is not {what}", example)
        return value

    def account(self, key: str) -> str:
        value = self.raw(key)
        if isinstance(value, int) and not isinstance(value, bool):
            # JSON numbers lose leading zeros (012345678901 would become 12345678901).
            raise self.error(key, f'{value} is a number; write it as a string, "{value:012d}"')
        return self.string(key, ACCOUNT_RE, "a 12-digit AWS account id", ACCOUNT_EXAMPLE)

    def region(self, key: str) -> str:
        value = self.raw(key)
        if isinstance(value, str) and value and partition_of(value) is None:
            raise self.error(
                key,
                f"{value!r} is not an AWS region name (such as {REGION_EXAMPLE}, "
                f"{EXAMPLE_REGIONS['aws-cn']}, {EXAMPLE_REGIONS['aws-us-gov']} or "
                f"{EXAMPLE_REGIONS['aws-eusc']})",
                None,  # the problem already lists examples, one per partition
            )
        return self.string(key, re.compile(r"."), "an AWS region name", REGION_EXAMPLE)

    def emails(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(key, "must be a list of e-mail addresses", EMAILS_EXAMPLE)
        for item in value:
            if not isinstance(item, str) or not EMAIL_RE.match(item):
                raise self.error(key, f"{item!r} is not an e-mail address", EMAILS_EXAMPLE)
        return tuple(value)

    def stage(
        self,
        key: str,
        value: Any,
        *,
        keys: tuple[str, ...] = STAGE_KEYS,
        example: str = STAGE_EXAMPLE,
    ) -> StageConfig:
        if value is None or value == "":
            raise self.error(key, "is missing", example)
        if not isinstance(value, dict):
            raise self.error(key, "must be an object with name, account and region", example)
        inner = ContextReader(value.get, parent=self.name(key), origins=self._origins)
        inner.reject_unknown_keys(value.keys(), keys)
        return StageConfig(
            name=inner.string(
                "name",
                STAGE_NAME_RE,
                "a stage name (a lower-case letter, then up to 19 lower-case letters, "
                "digits or '-')",
                STAGE_NAME_EXAMPLE,
            ),
            account=inner.account("account"),
            region=inner.region("region"),
            manual_approval=inner.boolean("manualApproval", default=False),
            retain_data=inner.boolean("retainData", default=True),
            reserved_concurrency=inner.optional_positive_int("reservedConcurrency"),
        )

    def stages(self, key: str) -> tuple[StageConfig, ...]:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "must be a non-empty list of stages", f"[{STAGE_EXAMPLE}]")
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
        # `-c pipeline=False` arrives as the string "False".
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(key, f"{value!r} is not true or false", "false")

    def optional_positive_int(self, key: str) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(key, f"{value!r} is not a positive whole number", "10")
        return value

    def reject_unknown_keys(self, present: Iterable[str], known: tuple[str, ...]) -> None:
        """A key the project does not read is a typo or a misplaced setting: say which."""
        for key in present:
            if key not in known:
                where = f'in "{self._parent}"' if self._parent else 'under "context"'
                raise self.error(
                    key,
                    f"is not a setting here{_did_you_mean(key, known)}",
                    fix=f"Rename or remove it {where} in cdk.json (or in your -c option).",
                )


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{by_lower[close[0]]}"?'
    return f" (known: {', '.join(known)})"


def _fix(key: str, example: str | None = None) -> str:
    shown = f" (for example {example})" if example else ""
    return f'Set "{key}" under "context" in cdk.json, or pass -c {key}=VALUE{shown}.'


def is_cdk_context_key(key: str) -> bool:
    """True for context the CDK itself reads or writes (flags, lookups, CLI settings)."""
    return key.startswith("@") or ":" in key or key in CDK_CONTEXT_KEYS


def check_top_level_keys(context: Context) -> None:
    """Rejects a top-level context key that is neither the project's nor the CDK's."""
    reader = ContextReader.of(context)
    ours = [key for key in context.names() if not is_cdk_context_key(key)]
    reader.reject_unknown_keys(ours, TOP_LEVEL_KEYS)


def load_app_config(source: Context | Mapping[str, Any] | ContextLookup) -> AppConfig:
    """What every synth needs: the directly deployable stage and the alarm recipients."""
    context = as_context(source)
    check_top_level_keys(context)
    reader = ContextReader.of(context)
    dev_stage = reader.stage(
        "devStage", reader.raw("devStage"), keys=DEV_STAGE_KEYS, example=DEV_STAGE_EXAMPLE
    )
    _check_dev_stage_is_its_own(reader, dev_stage)
    return AppConfig(
        dev_stage=dev_stage,
        alarm_emails=reader.emails("alarmEmails"),
        repository=_repository(reader),
        branch=_branch(reader),
    )


def _repository(reader: ContextReader) -> str:
    return reader.string(
        "githubRepository", REPOSITORY_RE, "a GitHub owner/repository", REPOSITORY_EXAMPLE
    )


def _branch(reader: ContextReader) -> str:
    return reader.string("githubBranch", BRANCH_RE, "a git branch name", BRANCH_EXAMPLE)


def _check_dev_stage_is_its_own(reader: ContextReader, dev_stage: StageConfig) -> None:
    # Stacks are named after the stage: a devStage named like a pipeline stage would make
    # `make deploy` replace that stage's stacks (production's, say). Checked even with the
    # pipeline switched off, which is exactly when `make deploy` runs. A malformed `stages`
    # is the pipeline's error to report, so only well-formed names are compared here.
    try:
        stages = reader.raw("stages")
    except ConfigError:
        return
    for index, item in enumerate(stages if isinstance(stages, list) else []):
        if isinstance(item, dict) and item.get("name") == dev_stage.name:
            raise reader.error(
                "devStage.name",
                f"{dev_stage.name!r} is also the name of stages[{index}], so both would be the "
                f"stacks {contract.stage_stack_prefix(dev_stage.name)}-*, and `make deploy` would "
                "replace that stage's stacks; give your own stage a name of its own",
                DEV_STAGE_EXAMPLE,
            )


def wants_pipeline(source: Context | Mapping[str, Any] | ContextLookup) -> bool:
    """The app builds the pipeline unless told not to (`-c pipeline=false`)."""
    return ContextReader.of(as_context(source)).boolean(PIPELINE_SWITCH, default=True)


def load_pipeline_config(source: Context | Mapping[str, Any] | ContextLookup) -> PipelineConfig:
    """What the pipeline needs on top: the connection, its home and the stages it deploys."""
    reader = ContextReader.of(as_context(source))
    try:
        return _read_pipeline_config(reader)
    except ConfigError as error:
        # A developer who only wants their own stage should not have to fix this.
        error.add_note(DEV_ONLY_HINT)
        raise


def _read_pipeline_config(reader: ContextReader) -> PipelineConfig:
    config = PipelineConfig(
        repository=_repository(reader),
        branch=_branch(reader),
        connection_arn=reader.string(
            "githubConnectionArn",
            CONNECTION_ARN_RE,
            "a CodeConnections connection ARN",
            CONNECTION_ARN_EXAMPLE,
        ),
        account=reader.account("pipelineAccount"),
        region=reader.region("pipelineRegion"),
        stages=reader.stages("stages"),
    )
    _check_one_partition(reader, config)
    return config


def _check_one_partition(reader: ContextReader, config: PipelineConfig) -> None:
    # IAM roles cannot be assumed across partitions: the pipeline's roles can deploy only
    # to accounts of its own partition.
    home = partition_of(config.region)
    for index, stage in enumerate(config.stages):
        if stage.partition != home:
            raise reader.error(
                f"stages[{index}].region",
                f"{stage.region!r} is in the {stage.partition} partition, but the pipeline "
                f"(pipelineRegion {config.region!r}) is in {home}; a pipeline deploys only "
                "within its own partition: run one pipeline per partition",
                EXAMPLE_REGIONS.get(home or "aws", REGION_EXAMPLE),
            )


def placeholder_problems(source: Context | Mapping[str, Any], *, pipeline: bool) -> list[str]:
    """What still names the committed placeholder account, one line each (empty: none).

    `pipeline` False checks what `make deploy` deploys (devStage), True what
    `make deploy-pipeline` deploys (the pipeline and every stage).
    """
    context = as_context(source)
    app = load_app_config(context)
    accounts = {"devStage.account": app.dev_stage.account}
    if pipeline:
        config = load_pipeline_config(context)
        accounts = {"pipelineAccount": config.account}
        accounts.update(
            {f"stages[{i}].account": stage.account for i, stage in enumerate(config.stages)}
        )
    problems = [
        f"{key} is {PLACEHOLDER_ACCOUNT}, the placeholder committed in cdk.json, not your "
        "account: set your 12-digit account id there (`aws sts get-caller-identity --query "
        "Account --output text` prints the one your credentials are for)."
        for key, account in accounts.items()
        if account == PLACEHOLDER_ACCOUNT
    ]
    if pipeline and _is_placeholder_arn(load_pipeline_config(context).connection_arn):
        problems.append(
            "githubConnectionArn is the placeholder committed in cdk.json: create a "
            "CodeConnections connection to GitHub (README, One-time set-up) and set its ARN."
        )
    return problems


def _is_placeholder_arn(arn: str) -> bool:
    return f":{PLACEHOLDER_ACCOUNT}:" in arn


def read_json_context(path: Path) -> dict[str, Any]:
    """The context of a cdk.json-style file (`{"context": {...}}`); {} if absent."""
    if not path.exists():
        return {}
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def committed_context_files() -> dict[str, dict[str, Any]]:
    """The files the CDK CLI reads context from, by the name messages give them."""
    cached = {}
    if CDK_CONTEXT_JSON.exists():
        cached = json.loads(CDK_CONTEXT_JSON.read_text(encoding="utf-8"))
    return {"cdk.json": read_json_context(CDK_JSON), "cdk.context.json": cached}


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's context, for runs outside the CDK CLI (`python app.py`, tests, sandbox)."""
    return read_json_context(path)
