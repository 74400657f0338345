"""`python -m sandbox --help`."""

import sys

try:
    from sandbox.cli import main
except ImportError as error:
    # The usual cause: a Python other than the project's (its moto, boto3... missing or of
    # another version). One line that says how to run it, not a traceback.
    print(
        f"python -m sandbox: can't import what the sandbox needs ({error}) with "
        f"{sys.executable}: run it with the project's environment: `make install`, then "
        "`source .venv/bin/activate` (or `.venv/bin/python -m sandbox ...`)",
        file=sys.stderr,
    )
    sys.exit(2)

sys.exit(main())
