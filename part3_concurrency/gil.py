"""The old name of measure/gil.py, kept so that code written against it still loads: the
same module, under both names. Import part3_concurrency.measure.gil in new code."""

import sys

from part3_concurrency.measure import gil

sys.modules[__name__] = gil
