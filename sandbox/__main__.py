"""`python -m sandbox --help`."""

import sys

from sandbox import environment_error_line

try:
    from sandbox.cli import main
except ImportError as error:
    # The usual cause: a Python other than the project's. One line, not a traceback.
    print(environment_error_line(error), file=sys.stderr)
    sys.exit(2)

sys.exit(main())
