"""A campaign run's journal and files: one row per message, whatever restarts between.

Why a journal, and files rebuilt from it. The host hands the dispatcher one message at a
time, but a print service wants one CSV and one PDF per mailing, and a PDF cannot be
appended to. So each message is appended to the run's journal (one JSON line, keyed by
the message id, written with one ``write`` on an ``O_APPEND`` file and fsynced before
the outcome is returned), and the files are rebuilt from the whole journal when the run
ends (:attr:`omnicrm.Dispatcher.finish`, which the sender calls whenever it stops:
rebuilding the PDF per message would cost time quadratic in the campaign's size). Each
file is written to a temporary name, fsynced and renamed over its place, so a reader
sees the old file or the new one, never half of one.

A restart neither duplicates nor loses a row:

* a message already in the journal (dispatched again by whoever retries it) is
  answered with the label it got, and not appended again;
* a crash while a line is written leaves a torn last line, without a newline: it is
  cut off before the next append (that message had no answer, so the outbox marks it
  ``unknown`` for the operator);
* a run that did not finish stays open: the restarted sender appends to it, and its
  ``finish`` builds the files from every line, those before the crash included.

A run is what one sender wrote between two ``finish`` calls: once finished (its files
built and a closing line appended) it is never written again, so a print service's copy
never changes under it; the next message of the campaign opens a new run. Runs are named
``SHOP_CAMPAIGN_YYYYMMDD`` (the date the run opened, in the settings' zone), with ``-2``,
``-3``... when that name is taken: no file of an earlier run is overwritten. Files:
``NAME.csv`` (the recipients), ``NAME-labels.pdf``, ``NAME-unaddressable.csv`` (the
messages refused, with the reason, when there are any), and the journal
``.journal/NAME.jsonl``. Processes writing the same directory take turns on a lock
file (``fcntl.flock``), and each reads what the others appended before it writes.

A redaction is the one exception to "never written again": :meth:`Runs.forget` takes a
person's messages out of every run's journal (the journal rewritten through a temporary
file renamed over it, so another process sees a new file and reads it whole) and
rebuilds the files of each finished run from what is left, each atomically; a finished
run whose files can no longer be built under the settings now (an encoding changed) has
them deleted instead, and a file left with nobody in it (the labels, the unaddressable
list) is deleted. The labels after a removed one move up by one; the label numbers the
outbox recorded for the others are not rewritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import re
import tempfile
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnicrm.csvfiles import CsvWriter
from omnicrm.errors import DataError
from omnicrm.plugins.postal.address import Recipient
from omnicrm.plugins.postal.labels import write_labels
from omnicrm.plugins.postal.settings import PostalSettings

JOURNALS = ".journal"
LOCK = ".lock"
UNADDRESSABLE_HEADER = ("メッセージID", "顧客ID", "理由", "郵便番号", "住所", "宛名")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """``text`` as a part of a file name: letters, digits, ``_``, ``.`` and ``-``."""
    name = _UNSAFE.sub("_", text) or "_"
    return "_" + name if name.startswith(".") else name


@dataclass(frozen=True)
class Recorded:
    """Where a message went: its run and its label (None: listed as unaddressable)."""

    run: str
    label: int | None
    again: bool  # the message was in the journal already


@dataclass
class Run:
    """One run's journal as read so far."""

    path: Path
    shop: str
    campaign: str
    offset: int = 0  # bytes read: the end of the last whole line
    labels: dict[str, int] = field(default_factory=dict)  # message id -> label number
    recipients: list[Recipient] = field(default_factory=list)
    unaddressable: dict[str, list[str]] = field(default_factory=dict)  # id -> CSV row
    finished: bool = False
    inode: int = 0  # of the journal read: a rewritten journal (a redaction) is read again

    @property
    def name(self) -> str:
        return self.path.stem


class Runs:
    """The runs in one directory (one object per directory per process)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.journals = directory / JOURNALS
        self._runs: dict[Path, Run] = {}
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self.journals.mkdir(parents=True, exist_ok=True)
            with open(self.journals / LOCK, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    # -- reading -------------------------------------------------------------------------

    def _scan(self, shop: str, campaign: str) -> list[Run]:
        """Every run of ``shop``'s ``campaign``, oldest first, each read to its end."""
        found = []
        for path in sorted(self.journals.glob("*.jsonl")):
            known = self._runs.get(path)
            if known is not None and (known.shop, known.campaign) != (shop, campaign):
                continue  # another campaign's: its first line, which says whose, never changes
            run = self._refresh(path)
            if run is not None and run.shop == shop and run.campaign == campaign:
                found.append(run)
        return found

    def _refresh(self, path: Path) -> Run | None:
        run = self._runs.get(path)
        with open(path, "rb") as journal:
            inode = os.fstat(journal.fileno()).st_ino
            if run is not None and run.inode != inode:
                run = None  # rewritten by a redaction since: what was read is gone
                del self._runs[path]
            start = run.offset if run is not None else 0
            journal.seek(start)
            data = journal.read()
        end = data.rfind(b"\n") + 1  # a torn last line is left for later, or cut off
        lines = data[:end].splitlines()
        if run is None:
            if not lines:
                return None  # being created by another process, or cut short at birth
            head = json.loads(lines.pop(0))
            run = Run(path, str(head["shop"]), str(head["campaign"]), inode=inode)
            self._runs[path] = run
        for line in lines:
            _apply(run, json.loads(line))
        run.offset = start + end
        return run

    # -- writing -------------------------------------------------------------------------

    def _append(self, run: Run, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False).encode() + b"\n"
        fd = os.open(run.path, os.O_WRONLY | os.O_APPEND)
        try:
            if os.fstat(fd).st_size > run.offset:
                # A line torn by a crash (we hold the lock, so its writer is gone): cut it
                # off, or the next line would be glued to it.
                os.ftruncate(fd, run.offset)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        run.offset += len(line)
        _apply(run, entry)

    def _open(self, shop: str, campaign: str, today: dt.date) -> Run:
        """A new run of ``shop``'s ``campaign``, named so that no earlier file is replaced."""
        base = f"{safe_name(shop)}_{safe_name(campaign)}_{today:%Y%m%d}"
        head = json.dumps(
            {"shop": shop, "campaign": campaign, "opened": today.isoformat()},
            ensure_ascii=False,
        ).encode()
        for n in range(1, 10_000):
            name = base if n == 1 else f"{base}-{n}"
            if any(path.exists() for path in self.files(name)):
                continue
            try:
                fd = os.open(self.journals / f"{name}.jsonl", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            try:
                os.write(fd, head + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.journals)
            path = self.journals / f"{name}.jsonl"
            run = Run(path, shop, campaign, offset=len(head) + 1, inode=path.stat().st_ino)
            self._runs[run.path] = run
            return run
        raise DataError(f"{self.directory}: no free name for another run of {base}")

    def files(self, name: str) -> tuple[Path, Path, Path]:
        """The files of run ``name``: recipients CSV, labels PDF, unaddressable CSV."""
        return (
            self.directory / f"{name}.csv",
            self.directory / f"{name}-labels.pdf",
            self.directory / f"{name}-unaddressable.csv",
        )

    def record(
        self,
        *,
        shop: str,
        campaign: str,
        today: dt.date,
        message_id: str,
        recipient: Recipient | None = None,
        unaddressable: list[str] | None = None,
    ) -> Recorded:
        """Append one message to the open run of ``shop``'s ``campaign`` (opening one
        if none is): a ``recipient`` gets the next label, ``unaddressable`` (the row of
        the unaddressable CSV) is listed. A message the journal has already labelled
        gets the label it had."""
        with self._locked():
            runs = self._scan(shop, campaign)
            for run in runs:
                if message_id in run.labels:
                    return Recorded(run.name, run.labels[message_id], again=True)
            current = next((r for r in runs if not r.finished), None)
            if recipient is None and current is not None and message_id in current.unaddressable:
                return Recorded(current.name, None, again=True)
            if current is None:
                current = self._open(shop, campaign, today)
            if recipient is not None:
                self._append(current, {"id": message_id, "recipient": recipient.to_json()})
                return Recorded(current.name, current.labels[message_id], again=False)
            self._append(current, {"id": message_id, "unaddressable": unaddressable or []})
            return Recorded(current.name, None, again=False)

    def finish(self, shop: str, campaign: str, settings: PostalSettings) -> list[Path]:
        """Build the files of each open run of ``shop``'s ``campaign`` and close it; the
        files written. A run whose files cannot be built (a character the encoding
        lacks) raises DataError naming the row, and stays open."""
        written: list[Path] = []
        with self._locked():
            for run in self._scan(shop, campaign):
                if run.finished:
                    continue
                written += self._build(run, settings)
                self._append(run, {"finished": dt.datetime.now(dt.UTC).isoformat()})
        return written

    def holding(self, shop: str, message_ids: Collection[str]) -> list[str]:
        """The runs of ``shop`` whose journal holds any of ``message_ids`` (a person's
        messages: a label or a line of the unaddressable list), oldest first."""
        wanted = set(message_ids)
        with self._locked():
            return [run.name for run in self._all(shop) if wanted & _held(run)]

    def forget(
        self, shop: str, message_ids: Collection[str], settings: PostalSettings
    ) -> list[str]:
        """Take ``message_ids`` out of every run of ``shop`` and rebuild (or delete) the
        files that held them (see the module); the names of the files changed."""
        wanted = set(message_ids)
        changed: list[str] = []
        with self._locked():
            for run in self._all(shop):
                if not wanted & _held(run):
                    continue
                run = self._rewrite(run, wanted)
                if not run.finished:
                    continue  # its files are built, from what is left, when it finishes
                present = {p for p in self.files(run.name) if p.exists()}
                try:
                    written = set(self._build(run, settings))
                except DataError:
                    written = set()  # cannot be rebuilt as it was: deleted instead
                for stale in sorted(present - written):
                    stale.unlink()
                _fsync_dir(self.directory)
                changed += [p.name for p in sorted(present | written)]
        return changed

    def _all(self, shop: str) -> list[Run]:
        """Every run of ``shop``, whatever its campaign, each read to its end."""
        found = []
        for path in sorted(self.journals.glob("*.jsonl")):
            run = self._refresh(path)
            if run is not None and run.shop == shop:
                found.append(run)
        return found

    def _rewrite(self, run: Run, wanted: set[str]) -> Run:
        """Write ``run``'s journal again without the lines of ``wanted``; the run as read
        from the new journal."""
        with open(run.path, "rb") as journal:
            data = journal.read()
        lines = data[: data.rfind(b"\n") + 1].splitlines(keepends=True)  # a torn line: gone
        kept = [lines[0]] + [
            line for line in lines[1:] if str(json.loads(line).get("id")) not in wanted
        ]
        _write_atomically(run.path, b"".join(kept))
        del self._runs[run.path]
        fresh = self._refresh(run.path)
        assert fresh is not None  # its first line was kept
        return fresh

    def _build(self, run: Run, settings: PostalSettings) -> list[Path]:
        recipients_csv, labels_pdf, unaddressable_csv = self.files(run.name)
        written = [recipients_csv]
        rows = [[settings.header(c) for c in settings.columns]]
        rows += [[r.column(c) for c in settings.columns] for r in run.recipients]
        _write_atomically(recipients_csv, _csv_bytes(rows, settings.encoding, recipients_csv))
        if run.recipients:
            out = io.BytesIO()
            write_labels(out, run.recipients, settings.labels, title=run.name)
            _write_atomically(labels_pdf, out.getvalue())
            written.append(labels_pdf)
        listed = [row for key, row in run.unaddressable.items() if key not in run.labels]
        if listed:
            rows = [list(UNADDRESSABLE_HEADER), *listed]
            # Always UTF-8: it lists what the print service's encoding may not hold.
            _write_atomically(unaddressable_csv, _csv_bytes(rows, "utf-8-sig", unaddressable_csv))
            written.append(unaddressable_csv)
        return written


def _held(run: Run) -> set[str]:
    """The message ids ``run`` holds: its labels and its unaddressable lines."""
    return set(run.labels) | set(run.unaddressable)


def _apply(run: Run, entry: dict[str, Any]) -> None:
    """Take one journal line into ``run``."""
    if "finished" in entry:
        run.finished = True
    elif "recipient" in entry:
        key = str(entry["id"])
        if key not in run.labels:
            run.recipients.append(Recipient.from_json(entry["recipient"]))
            run.labels[key] = len(run.recipients)
    elif "unaddressable" in entry:
        run.unaddressable[str(entry["id"])] = [str(v) for v in entry["unaddressable"]]


def _csv_bytes(rows: list[list[str]], encoding: str, path: Path) -> bytes:
    """``rows`` as CSV in ``encoding``; DataError naming the row and the column of a
    character the encoding cannot write (never a '?' in its place)."""
    text = io.StringIO(newline="")
    writer = CsvWriter(text)
    for n, row in enumerate(rows, 1):
        for m, value in enumerate(row):
            try:
                value.encode(encoding)
            except UnicodeEncodeError as exc:
                raise DataError(
                    f"{path.name}: row {n}, column {m + 1} ({rows[0][m]}): "
                    f"U+{ord(value[exc.start]):04X} cannot be written in {encoding}"
                ) from None
        writer.writerow(row)
    return text.getvalue().encode(encoding)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_stores: dict[Path, Runs] = {}
_stores_lock = threading.Lock()


def runs_in(directory: Path) -> Runs:
    """The :class:`Runs` of ``directory`` (one per directory, kept for the process)."""
    key = directory.resolve()
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Runs(key)
        return _stores[key]
