"""The terminal UI (Textual): ``omnicrm tui``. See docs/tui.md."""

from __future__ import annotations

from omnicrm.tui.app import OmnicrmApp

__all__ = ["OmnicrmApp"]
