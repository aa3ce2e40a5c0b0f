"""The old name of measure/client.py, kept so that code written against it still loads: the
same module, under both names. Import part3_concurrency.measure.client in new code."""

import sys

from part3_concurrency.measure import client

sys.modules[__name__] = client
