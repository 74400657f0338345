"""Reads CDK's validation report (cdk.out/validation-report.json) into one line per finding.

python -m compliance.report [cdk.out]   # prints each unacknowledged finding, exits 1 if any
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPORT_NAME = "validation-report.json"


@dataclass(frozen=True, order=True)
class Finding:
    """One unacknowledged finding: what to acknowledge (or fix), and where."""

    rule: str
    path: str
    description: str

    def __str__(self) -> str:
        return f"{self.rule} at {self.path}: {self.description}"


def read_findings(assembly_dir: Path) -> list[Finding]:
    """Every violation the validation plugins reported; none when no report was written."""
    report_path = assembly_dir / REPORT_NAME
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return sorted(
        Finding(violation["ruleName"], construct["constructPath"], violation["description"])
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    )


def main(argv: list[str]) -> int:
    findings = read_findings(Path(argv[0] if argv else "cdk.out"))
    for finding in findings:
        print(f"{finding.rule}  {finding.path}")
    print(f"{len(findings)} unacknowledged finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
