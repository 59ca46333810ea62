"""OMNICRM_TRACE_PLUGINS=1 shows every hook call on the command line, at any verbosity."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def plugins(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnicrm.cli", "plugins"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        check=True,
        timeout=60,
    )


def test_trace_plugins_logs_each_hook_call_with_its_plugin_and_duration() -> None:
    traced = plugins(OMNICRM_TRACE_PLUGINS="1").stderr
    assert re.search(r"hook omnicrm_register \[shopify\] \d+\.\d{3} ms", traced), traced
    assert "hook omnicrm_register" not in plugins(OMNICRM_TRACE_PLUGINS="").stderr
