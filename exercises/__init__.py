"""The workbook: your exercises, one file per part (part1.py ... part4.py).

Each function raises NotImplementedError until you write it; ``python -m grader``
scores them. See the README's "For students" section.
"""
