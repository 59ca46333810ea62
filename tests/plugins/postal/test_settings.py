"""The postal settings: defaults named in the docs, mistakes named by field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omnicrm.plugins.postal.sandbox import sandbox
from omnicrm.plugins.postal.settings import DEFAULT_COLUMNS, HEADERS, PostalSettings


def test_the_defaults_are_a_utf8_csv_and_an_a4_12_up_sheet() -> None:
    settings = PostalSettings()
    assert settings.encoding == "utf-8-sig"
    assert settings.columns == DEFAULT_COLUMNS
    assert (settings.labels.page, settings.labels.columns, settings.labels.rows) == ("A4", 2, 6)
    assert settings.labels.per_page == 12
    assert [settings.header(c) for c in settings.columns][:2] == ["郵便番号", "都道府県"]
    assert set(DEFAULT_COLUMNS) <= set(HEADERS)


@pytest.mark.parametrize(
    ("given", "where", "says"),
    [
        ({"columns": ["name", "fax"]}, ("columns", 1), "Input should be"),
        ({"columns": ["name", "name"]}, ("columns",), "named twice: name"),
        ({"columns": []}, ("columns",), "at least one column"),
        ({"encoding": "shift_jis"}, ("encoding",), "Input should be"),
        ({"headers": {"name": " "}}, ("headers",), "the header of name is empty"),
        ({"labels": {"rows": 8}}, ("labels",), "do not fit on A4"),
        ({"labels": {"padding_mm": 30}}, ("labels",), "padding_mm leaves no room"),
        ({"timezone": "Asia/Nowhere"}, ("timezone",), ""),
        ({"directory": "/tmp", "colour": "red"}, ("colour",), "Extra inputs"),
    ],
)
def test_a_mistake_is_named_by_its_field(
    given: dict[str, object], where: tuple[object, ...], says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        PostalSettings.model_validate(given)
    (error,) = caught.value.errors()
    assert error["loc"][: len(where)] == where
    assert says in error["msg"]


def test_the_sandbox_is_a_directory_removed_after_or_kept_when_asked(tmp_path: Path) -> None:
    with sandbox() as settings:
        directory = Path(settings["directory"])
        assert directory.is_dir() and PostalSettings.model_validate(settings)
    assert not directory.exists()
    kept = tmp_path / "demo-messages" / "tokyo-tea-postal"
    with sandbox(client=1, keep_in=kept) as settings:
        assert Path(settings["directory"]) == kept
    assert kept.is_dir()
