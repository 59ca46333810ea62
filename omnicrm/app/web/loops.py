"""Answering requests that wait on an event loop from a writer thread.

A writer that commits many requests' writes at once answers each event loop once per
batch: a wake-up of the loop per request (``asyncio.wrap_future``, one
``call_soon_threadsafe`` each) costs more CPU than the request's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any

# A future to answer, its result and the exception instead (None: the result).
Answer = tuple["Future[Any] | asyncio.Future[Any]", Any, BaseException | None]


def settle(answers: Sequence[Answer]) -> None:
    """Answer futures (on their event loop, for asyncio's)."""
    for future, result, exc in answers:
        if future.done():  # an asyncio request that was cancelled meanwhile
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


def answer(answers: Sequence[Answer], loop: asyncio.AbstractEventLoop | None) -> None:
    """Answer futures of ``loop`` with one wake-up of it (at once, for no loop)."""
    if loop is None:
        settle(answers)
    else:
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody waits
            loop.call_soon_threadsafe(settle, answers)


def answer_each_loop(answers: Iterable[tuple[asyncio.AbstractEventLoop | None, Answer]]) -> None:
    """Answer futures of many loops: one wake-up of each for all of its own."""
    by_loop: dict[asyncio.AbstractEventLoop | None, list[Answer]] = {}
    for loop, one in answers:
        by_loop.setdefault(loop, []).append(one)
    for loop, held in by_loop.items():
        answer(held, loop)
