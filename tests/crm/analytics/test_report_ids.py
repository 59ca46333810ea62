"""Ids in reports are names, not quantities: never printed with thousands separators."""

from __future__ import annotations

import inspect

from omnicrm.crm.analytics import reports, scoring
from omnicrm.crm.analytics.reports import Kind, format_cell


def test_an_id_is_printed_as_it_is() -> None:
    assert format_cell(1234567, Kind.ID) == "1234567"
    assert format_cell(1234567, Kind.INT) == "1,234,567"


def test_every_profile_column_of_a_report_is_an_id() -> None:
    for module in (reports, scoring):
        source = inspect.getsource(module)
        assert 'Column("profile", Kind.INT)' not in source, module.__name__
        assert 'Column("profile", Kind.ID)' in source, module.__name__
