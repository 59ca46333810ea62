"""The emulator base (omnicrm.testing.Emulator): life, fault switches, no pytest at runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnicrm.testing import Emulator


class Echo(Emulator):
    """Answers every path with its name; ``/_control`` is left alone by the faults."""

    name = "echo-emulator"

    def __init__(self) -> None:
        super().__init__()
        self.app = Starlette(routes=[Route("/{path:path}", self._echo)])

    async def _echo(self, request: Request) -> Response:
        return JSONResponse({"path": request.url.path, "padding": "x" * 100})


class Teapot(Echo):
    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        return Response(f"teapot {status} at {request.url.path}", status, headers=dict(headers))


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def test_it_serves_on_a_free_loopback_port_until_stopped() -> None:
    server = Echo()
    with server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        assert server.port != 0
        assert httpx.get(f"{server.url}/hello").json()["path"] == "/hello"
        assert server.start() is server, "starting a running emulator changes nothing"
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/hello")


def test_two_emulators_run_side_by_side(echo: Echo) -> None:
    with Echo() as other:
        assert other.port != echo.port
        assert httpx.get(f"{other.url}/b").json()["path"] == "/b"


def test_the_next_requests_fail_then_it_recovers(echo: Echo) -> None:
    echo.fail_next(2, status=502)
    with httpx.Client(base_url=echo.url) as http:
        assert [http.get("/a").status_code for _ in range(3)] == [502, 502, 200]
    assert echo.injected == 2


def test_a_switch_sets_the_next_requests_rather_than_adding(echo: Echo) -> None:
    echo.fail_next(5)
    echo.fail_next(1, status=500)
    statuses = [httpx.get(f"{echo.url}/a").status_code for _ in range(2)]
    assert statuses == [500, 200]


def test_rate_limits_carry_retry_after_as_given(echo: Echo) -> None:
    echo.rate_limit_next(retry_after=2.5)
    echo.fail_next(0)
    limited = httpx.get(f"{echo.url}/a")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2.5"
    assert limited.json() == {"error": "Too Many Requests"}
    date = "Wed, 21 Oct 2037 07:28:00 GMT"
    echo.rate_limit_next(retry_after=date)
    assert httpx.get(f"{echo.url}/a").headers["Retry-After"] == date


def test_a_malformed_answer_is_half_a_body_with_a_matching_length(echo: Echo) -> None:
    whole = httpx.get(f"{echo.url}/a").content
    echo.malform_next()
    cut = httpx.get(f"{echo.url}/a")
    assert cut.status_code == 200 and cut.content == whole[: len(whole) // 2]
    assert int(cut.headers["content-length"]) == len(cut.content)
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    assert httpx.get(f"{echo.url}/a").content == whole


def test_a_slow_answer_times_a_client_out(echo: Echo) -> None:
    echo.delay_next(seconds=2.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{echo.url}/a", timeout=0.2)
    assert httpx.get(f"{echo.url}/a", timeout=5).status_code == 200


def test_faults_skip_control_paths_and_can_be_cleared(echo: Echo) -> None:
    echo.fail_next(3)
    assert httpx.get(f"{echo.url}/_control").status_code == 200
    echo.clear_faults()
    assert httpx.get(f"{echo.url}/a").status_code == 200
    assert echo.injected == 0


def test_a_subclass_answers_faults_its_platforms_way() -> None:
    with Teapot() as server:
        server.fail_next(status=520)  # a status HTTP does not name
        answer = httpx.get(f"{server.url}/brew")
        assert (answer.status_code, answer.text) == (520, "teapot 520 at /brew")


def test_own_switches_queue_params_for_the_subclass(echo: Echo) -> None:
    echo.set_fault("truncate", 2, keep=0.25)
    assert echo.take_fault("truncate") == {"keep": 0.25}
    assert echo.take_fault("truncate") == {"keep": 0.25}
    assert echo.take_fault("truncate") is None
    assert echo.injected == 2


def test_importing_the_emulator_base_does_not_import_pytest() -> None:
    """A sandbox runs in `omnicrm demo`, where pytest is not installed."""
    code = (
        "import sys\n"
        "from omnicrm.testing import Emulator\n"
        "import omnicrm.plugins.shopify.sandbox.server\n"
        "import omnicrm_minishop.sandbox\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pytest', '_pytest'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout
