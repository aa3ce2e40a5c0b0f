"""``python -m tests.mutants [EXERCISE ...]``: grade the mutants, say which the grader fails."""

import sys

from tests.mutants import main

sys.exit(main())
