"""Checks before a deploy that the accounts in cdk.json are real ones, not the placeholder.

python -m config.preflight dev        # before `make deploy` (your devStage)
python -m config.preflight pipeline   # before `make deploy-pipeline` (pipeline and stages)

Exits 0 when the configuration can be deployed, 2 with one line per problem otherwise.
"""

from __future__ import annotations

import sys

from config.settings import ConfigError, Context, cdk_json_context, placeholder_problems

TARGETS = ("dev", "pipeline")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TARGETS:
        print(f"usage: python -m config.preflight {{{'|'.join(TARGETS)}}}", file=sys.stderr)
        return 2
    try:
        problems = placeholder_problems(Context(cdk_json_context()), pipeline=argv[0] == "pipeline")
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
