"""CodeDeploy's configuration as the drill reads it from a template, and EventBridge matching."""

from __future__ import annotations

import pytest

from sandbox.deployment import EventRule, deployment_event, traffic_shifting
from sandbox.drill.fault import Fault, Plan
from sandbox.template import TemplateError


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("CodeDeployDefault.LambdaCanary10Percent5Minutes", ((0, 10.0), (5, 100.0))),
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", ((0, 10.0), (30, 100.0))),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            tuple((n, 10.0 * (n + 1)) for n in range(10)),
        ),
        ("CodeDeployDefault.LambdaAllAtOnce", ((0, 100.0),)),
    ],
)
def test_predefined_lambda_configurations(name: str, steps: tuple[tuple[int, float], ...]) -> None:
    assert traffic_shifting(name).steps == steps


def test_custom_configuration_from_its_traffic_routing_config() -> None:
    config = {
        "ComputePlatform": "Lambda",
        "TrafficRoutingConfig": {
            "Type": "TimeBasedCanary",
            "TimeBasedCanary": {"CanaryPercentage": 20, "CanaryInterval": 3},
        },
    }
    assert traffic_shifting("Custom", config).steps == ((0, 20.0), (3, 100.0))


def test_unknown_configuration_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="OneAtATime"):
        traffic_shifting("CodeDeployDefault.OneAtATime")


RULE = EventRule(
    "Rule",
    {
        "source": ["aws.codedeploy"],
        "detail-type": ["CodeDeploy Deployment State-change Notification"],
        "detail": {"state": ["FAILURE", "STOP"], "application": ["app"]},
    },
    (
        (
            "arn:topic",
            {
                "InputPathsMap": {"id": "$.detail.deploymentId", "state": "$.detail.state"},
                "InputTemplate": '"deployment <id> ended in <state>"',
            },
        ),
    ),
)


def event(state: str, application: str = "app") -> dict[str, object]:
    return deployment_event(
        state=state,
        deployment_id="d-ABC",
        application=application,
        deployment_group="group",
        region="eu-central-1",
        account="123456789012",
        time="2026-11-30T12:00:00Z",
    )


def test_rule_matches_failed_and_stopped_deployments_of_its_application_only() -> None:
    assert RULE.matches(event("FAILURE"))
    assert RULE.matches(event("STOP"))
    assert not RULE.matches(event("SUCCESS"))
    assert not RULE.matches(event("FAILURE", application="other"))


def test_input_transformer_fills_the_template() -> None:
    ((_, transformer),) = RULE.targets
    assert RULE.input_for(event("STOP"), transformer) == '"deployment d-ABC ended in STOP"'


@pytest.mark.parametrize("spec", ["errors:2", "errors:x", "latency:-1", "keys:", "boom", "crash:1"])
def test_bad_fault_is_a_one_line_error(spec: str) -> None:
    with pytest.raises(ValueError, match="--fault"):
        Fault.parse(spec)


def test_key_fault_spares_the_health_check_and_fails_matching_uploads() -> None:
    plan = Plan(Fault.parse("keys:uploads/*"), 0.0, seed=1)

    def s3(key: str) -> dict[str, object]:
        return {"Records": [{"s3": {"object": {"key": key}}}]}

    assert plan.failure(s3("__healthcheck__/d-1")) is None
    assert plan.failure(s3("uploads/a+b.csv")) is not None
    assert plan.failure(s3("other/file.csv")) is None


def test_error_share_fails_about_that_share() -> None:
    plan = Plan(Fault.parse("errors:0.2"), 0.0, seed=3)
    failures = sum(plan.failure({}) is not None for _ in range(5000))
    assert 900 < failures < 1100


def test_matrix_cells_say_what_caught_the_release_and_when() -> None:
    from sandbox.drill.matrix import Cell

    assert Cell("x", 10, 5, by_hook=0, alarm_minutes=()).text(clean=False) == "missed 5/5"
    mixed = Cell("x", 10, 5, by_hook=1, alarm_minutes=(2, 3))
    assert mixed.text(clean=False) == "caught 3/5 (hook 1, alarm 2 at +2..+3 min), missed 2"
    assert Cell("c", 10, 20, by_hook=0, alarm_minutes=(4,)).text(clean=True) == (
        "1/20 false rollbacks"
    )
