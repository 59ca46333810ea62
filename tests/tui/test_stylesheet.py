"""The UI's stylesheet (``omnicrm/tui/omnicrm.tcss``) ships in the wheel and is found."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from omnicrm.tui import base, connections, customers, offers, segments
from omnicrm.tui.app import OmnicrmApp

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from pathlib import Path
from textual.app import App
from textual.css.stylesheet import Stylesheet
import omnicrm.tui.base as base

assert Path(base.__file__).is_relative_to(sys.argv[1]), base.__file__
sheet = Stylesheet(variables=App().get_css_variables())  # $warning and the like
sheet.read(base.STYLESHEET)  # fails when the file is missing
sheet.parse()  # fails when it does not parse
print(base.STYLESHEET)
"""


def test_every_screen_and_the_app_load_the_one_stylesheet() -> None:
    assert base.STYLESHEET.is_file()
    screens = [
        connections.MessageScreen,
        connections.ConfirmScreen,
        connections.ConnectionsScreen,
        connections.ConnectionScreen,
        customers.CustomerLookupScreen,
        customers.CustomerProfileScreen,
        segments.SegmentsScreen,
        segments.SegmentScreen,
        offers.OffersScreen,
        offers.OfferScreen,
    ]
    for screen in [*screens, OmnicrmApp]:
        assert screen.CSS_PATH == base.STYLESHEET, screen
        assert "DEFAULT_CSS" not in vars(screen), f"{screen.__name__} keeps its own CSS"


@pytest.mark.slow
def test_the_wheel_ships_the_stylesheet_and_the_installed_package_finds_it(
    tmp_path: Path,
) -> None:
    built = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(built)],
        check=True,
        timeout=240,
    )
    (wheel,) = built.glob("omnicrm-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        assert "omnicrm/tui/omnicrm.tcss" in archive.namelist()
        archive.extractall(installed)
    # From elsewhere, with the unpacked wheel first on the path (not the source tree).
    env = {**os.environ, "PYTHONPATH": str(installed)}
    found = subprocess.run(
        [sys.executable, "-c", CHECK, str(installed)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == installed / "omnicrm" / "tui" / "omnicrm.tcss"
