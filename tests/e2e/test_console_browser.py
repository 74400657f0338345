"""The console in a real browser (headless Chromium): the live console of `python -m sandbox
up` after uploads, and the snapshot of `python -m sandbox demo --dashboard` opened from disk.

Needs Debian's `chromium` and `chromium-driver`; `.ci/run` installs them and CI fails
without them. Screenshots land in test-artifacts/ (TEST_ARTIFACTS to change it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from sandbox import settings
from sandbox.console.dashboard import find_dashboard_template

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPOSITORY / "test-artifacts"))
INSTALL_HINT = "apt-get install chromium chromium-driver (Debian), then run again"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,3200",
)
UPLOADS = ("browser/one.txt", "browser/two words.csv", "browser/three+plus.json")
# Widgets that must show plotted data after uploads: the business flow and the function.
PLOTTED = (
    "Uploads vs files recorded",
    "Invocations and throttles",
    "Duration (ms)",
    "Invocations by version",
)
STARTUP_SECONDS = 120


def _browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver), or skip here / fail in CI when they are missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = f"browser tests need Chromium and its driver: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI installs them in .ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    chromium, driver = _browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def up(cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`python -m sandbox up` in a scratch directory; yields what it printed (by label)."""
    workdir = tmp_path_factory.mktemp("up")
    command = [sys.executable, "-m", "sandbox", "up", "--cdk-out", str(cdk_out)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        [*command, "--retry-delay", "0.05"],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield _printed(process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _printed(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    printed: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("Sandbox running at "):
            printed["endpoint"] = line.split()[-1]
        elif line.startswith("  ") and len(line.split()) == 2:
            label, value = line.split()
            printed[label] = value
        elif line.startswith("Ctrl-C"):
            return printed
    raise AssertionError(f"`sandbox up` ended before it was ready: {printed}")


def _upload_and_wait(up: dict[str, str], region: str) -> None:
    session = {
        "endpoint_url": up["endpoint"],
        "region_name": region,
        "aws_access_key_id": settings.SANDBOX_ACCESS_KEY,
        "aws_secret_access_key": settings.SANDBOX_SECRET_KEY,
    }
    s3, dynamodb = boto3.client("s3", **session), boto3.client("dynamodb", **session)
    for key in UPLOADS:
        s3.put_object(Bucket=up["bucket"], Key=key, Body=b"from the browser test")
    deadline = time.monotonic() + STARTUP_SECONDS
    while dynamodb.scan(TableName=up["table"], Select="COUNT")["Count"] < len(UPLOADS):
        assert time.monotonic() < deadline, "the uploads were not recorded in time"
        time.sleep(0.2)


def _dashboard_titles(cdk_out: Path, service_stack_name: str) -> list[str]:
    """Every widget title of the body in cdk.out (read as text: titles hold no tokens)."""
    _, resource = find_dashboard_template(cdk_out, service_stack_name)
    parts = resource["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return [
        w["properties"]["title"]
        for w in json.loads(text)["widgets"]
        if "title" in w.get("properties", {})
    ]


_GRAPH_STATE = """
const found = {};
for (const section of document.querySelectorAll('section.widget')) {
  const graph = section.querySelector('.js-plotly-plot');
  found[section.dataset.title] = graph ? {
    values: (graph.data || []).reduce((n, trace) => n + (trace.y ? trace.y.length : 0), 0),
    drawn: graph.querySelectorAll('.scatterlayer .point').length,
  } : null;
}
return found;
"""


def _check_page(browser: webdriver.Chrome, titles: list[str], screenshot: str) -> None:
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return document.querySelectorAll('.main-svg').length") > 0
    )
    state: dict[str, Any] = browser.execute_script(_GRAPH_STATE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / screenshot))
    assert [t for t in titles if t not in state] == [], "widget titles missing from the page"
    for title in PLOTTED:
        assert state[title] is not None, f"{title!r} has no graph"
        assert state[title]["values"] > 0, f"{title!r} has no data"
        assert state[title]["drawn"] > 0, f"{title!r} drew no points"
    assert browser.find_element("id", "alarms").text.count("upload-ledger-") >= 1


def test_the_console_of_a_running_sandbox_shows_every_widget_with_data(
    browser: webdriver.Chrome, up: dict[str, str], cdk_out: Path
) -> None:
    from sandbox.template import load_service_template

    template = load_service_template(cdk_out)
    _upload_and_wait(up, template.region or settings.SANDBOX_FALLBACK_REGION)
    assert up["console"].startswith("http://127.0.0.1:")
    browser.get(up["console"])
    _check_page(browser, _dashboard_titles(cdk_out, template.stack_name), "console.png")
    ledger = browser.find_element("id", "ledger").text
    assert all(key in ledger for key in UPLOADS)


def test_the_demo_snapshot_opens_from_disk_with_every_widget_and_data(
    browser: webdriver.Chrome, cdk_out: Path, tmp_path: Path
) -> None:
    from sandbox.template import load_service_template

    snapshot = tmp_path / "dashboard.html"
    demo = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [
            sys.executable,
            "-m",
            "sandbox",
            "demo",
            "--cdk-out",
            str(cdk_out),
            "--dashboard",
            str(snapshot),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    assert f"Dashboard snapshot: {snapshot}" in demo.stdout
    browser.get(snapshot.as_uri())
    titles = _dashboard_titles(cdk_out, load_service_template(cdk_out).stack_name)
    _check_page(browser, titles, "snapshot.png")


_TRACE_NAMES = """
const graph = document.querySelector(`section[data-title="${arguments[0]}"] .js-plotly-plot`);
return graph.data.map(trace => trace.name);
"""


def test_a_drill_snapshot_shows_the_rollback_as_the_operator_sees_it(
    browser: webdriver.Chrome, cdk_out: Path, tmp_path: Path
) -> None:
    snapshot = tmp_path / "drill.html"
    drill = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [
            sys.executable,
            "-m",
            "sandbox",
            "drill",
            "--cdk-out",
            str(cdk_out),
            "--model",  # the handler modelled: the release path is what this test is about
            "--fault",
            "keys:*.csv",
            "--expect",
            "rollback",
            "--dashboard",
            str(snapshot),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    browser.get(snapshot.as_uri())
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return document.querySelectorAll('.main-svg').length") > 0
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "drill.png"))
    # The per-version row shows both versions; the gate's ALARM message is in the outbox
    # (by the drill's last minute, back on version 1, the alarm itself is OK again).
    assert browser.execute_script(_TRACE_NAMES, "Invocations by version") == [
        "version 1",
        "version 2",
    ]
    outbox = browser.find_element("id", "outbox").text
    assert 'ALARM: "upload-ledger-' in outbox
    assert "canary-error-rate" in outbox


def test_a_missing_browser_skips_on_a_laptop_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium, no chromedriver
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        _browser_binaries()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI installs them in \.ci/run"):
        _browser_binaries()
