"""`fxviz diff`: which module is which (match), what changed and why (changes), the same edit
named once (groups), and the terminal report (report)."""

from fxviz.diff.changes import DIFF_SCHEMA_VERSION, Change, GraphDiff, Group, diff
from fxviz.diff.report import format_report

__all__ = ["DIFF_SCHEMA_VERSION", "Change", "GraphDiff", "Group", "diff", "format_report"]
