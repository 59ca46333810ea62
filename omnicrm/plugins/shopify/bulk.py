"""Backfill by bulk operation: run, resume, download, join and sort the JSONL.

A bulk operation runs Shopify-side and leaves a JSONL file: one line per object, nested
connections flattened into their own lines that point at their parent through
``__parentId``. Shopify documents only that a child comes somewhere after its parent;
children of different parents interleave, and the order of the roots is not the query's
sort order. So the file is streamed into a temporary SQLite database (memory stays
bounded however large the shop) and read back joined and sorted by ``updatedAt``, which
is the order the sync engine needs.

A crash must not cost a bulk operation (a large shop's takes minutes to hours), so the
operation's id is yielded as a :class:`~omnicrm.Checkpoint` as soon as it starts; the next
run finds it in ``ctx.state`` and resumes polling or downloading the same operation. An
operation of this app that is running with the very same query is adopted as well: that
is this plugin's own, started by a run that died before its checkpoint was committed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnicrm import Checkpoint
from omnicrm.errors import AuthError, DataError, SyncError, TransientError
from omnicrm.plugins.shopify.client import ShopifyClient
from omnicrm.plugins.shopify.queries import bulk_query

STATE_KEY = "bulk_operation"
"""The key of the operation's id in the stream's checkpoint state."""

_RUNNING = ("CREATED", "RUNNING")
_BATCH = 2000  # rows per executemany: bounded memory, few round trips
_POLL_GROWTH = 1.2  # each poll waits this much longer than the last, up to the maximum

# Which connection of the parent a child's lines belong to, by the child's GID type.
_CONNECTIONS = {"LineItem": "lineItems"}


@dataclass(frozen=True)
class BulkOperation:
    """What ``currentBulkOperation`` says of an operation."""

    id: str
    status: str
    error_code: str | None = None
    object_count: int = 0
    file_size: int | None = None
    url: str | None = None
    query: str = ""

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> BulkOperation:
        def count(name: str) -> int | None:
            # UnsignedInt64 comes as a string (JSON numbers cannot hold it).
            value = node.get(name)
            return None if value is None else int(value)

        return cls(
            id=str(node["id"]),
            status=str(node["status"]),
            error_code=node.get("errorCode"),
            object_count=count("objectCount") or 0,
            file_size=count("fileSize"),
            url=node.get("url"),
            query=str(node.get("query") or ""),
        )


def current_operation(client: ShopifyClient) -> BulkOperation | None:
    """This app's most recent bulk query operation on the shop, if any."""
    node = client.execute("BulkCurrent").data.get("currentBulkOperation")
    return BulkOperation.from_node(node) if isinstance(node, Mapping) else None


def _same_query(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class BulkExport:
    """One stream's export: yields a checkpoint, then the joined nodes, oldest first.

    ``sleep`` waits between polls (the platform is working, not throttling us).
    ``timeout`` bounds how long one run polls; the operation carries on Shopify-side
    and the next run resumes it.
    """

    def __init__(
        self,
        client: ShopifyClient,
        stream: str,
        search: str,
        *,
        line: tuple[str, str] | None = None,
        resume_id: str | None = None,
        since: dt.datetime | None = None,
        sleep: Callable[[float], None],
        logger: logging.Logger,
        poll_interval: float = 0.25,
        max_poll_interval: float = 30.0,
        timeout: float = 4 * 3600.0,
        workdir: Path | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.query = bulk_query(stream, search, line=line)
        self.resume_id = resume_id
        self.since = since
        self._sleep = sleep
        self._log = logger
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._timeout = timeout
        self._workdir = workdir

    def __iter__(self) -> Iterator[Checkpoint | dict[str, Any]]:
        operation = self._adopt_or_start()
        if operation.id != self.resume_id:
            yield Checkpoint(state={STATE_KEY: operation.id})
        operation = self._wait(operation)
        if not operation.url:
            self._log.info("shopify: bulk operation %s found no %s", operation.id, self.stream)
            return
        with tempfile.TemporaryDirectory(prefix="omnicrm-shopify-", dir=self._workdir) as tmp:
            join = _JoinFile(Path(tmp) / "bulk.sqlite3")
            try:
                self._download(operation, join)
                yield from join.nodes(self.since)
            finally:
                join.close()

    # -- the operation

    def _adopt_or_start(self) -> BulkOperation:
        current = current_operation(self.client)
        if current is not None:
            ours = current.id == self.resume_id
            if current.status in _RUNNING and (ours or _same_query(current.query, self.query)):
                self._log.info(
                    "shopify: resuming bulk operation %s (%s)", current.id, current.status.lower()
                )
                return current
            if ours and current.status == "COMPLETED":
                self._log.info("shopify: downloading bulk operation %s again", current.id)
                return current
            if ours and current.status == "FAILED" and current.error_code == "ACCESS_DENIED":
                raise self._denied(current)
            if ours:
                self._log.warning(
                    "shopify: bulk operation %s ended %s%s; starting a new one",
                    current.id,
                    current.status.lower(),
                    f" ({current.error_code})" if current.error_code else "",
                )
            elif current.status in _RUNNING:
                # Shopify runs one bulk query per app and shop: let the other one finish.
                self._log.warning(
                    "shopify: another bulk operation of this app (%s) is running; waiting",
                    current.id,
                )
                self._wait(current, others=True)
        return self._start()

    def _start(self, attempt: int = 0) -> BulkOperation:
        data = self.client.execute("BulkRun", {"query": self.query}).data
        payload = data.get("bulkOperationRunQuery")
        if not isinstance(payload, Mapping):
            raise SyncError("Shopify's answer to bulkOperationRunQuery has no payload")
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, Mapping)]
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors)
            busy = any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors) or (
                "in progress" in message.lower()
            )
            if busy and attempt == 0:
                current = current_operation(self.client)
                if current is not None and current.status in _RUNNING:
                    self._wait(current, others=True)
                return self._start(attempt + 1)
            if busy:
                raise TransientError(f"Shopify is still running another bulk operation: {message}")
            raise SyncError(f"Shopify refused the bulk {self.stream} query: {message}")
        node = payload.get("bulkOperation")
        if not isinstance(node, Mapping) or not node.get("id"):
            raise SyncError("Shopify started no bulk operation and gave no reason")
        operation = BulkOperation(id=str(node["id"]), status=str(node.get("status", "CREATED")))
        self._log.info("shopify: started bulk operation %s for %s", operation.id, self.stream)
        return operation

    def _wait(self, operation: BulkOperation, *, others: bool = False) -> BulkOperation:
        """Poll until ``operation`` is no longer running; return it (ours: completed)."""
        interval = self._poll_interval
        waited = 0.0
        while True:
            if operation.status not in _RUNNING:
                if others:
                    return operation
                return self._finished(operation)
            if waited >= self._timeout:
                raise TransientError(
                    f"Shopify's bulk operation {operation.id} is still running after "
                    f"{waited:.0f}s; the next run picks it up again"
                )
            self._sleep(interval)
            waited += interval
            # Slow growth: an operation is noticed done at most ~20% of its run late.
            interval = min(self._max_poll_interval, interval * _POLL_GROWTH)
            current = current_operation(self.client)
            if current is None or current.id != operation.id:
                if others:  # finished, and something newer started: check afresh
                    return current or operation
                raise TransientError(
                    f"Shopify's bulk operation {operation.id} was replaced by another one "
                    "before it finished"
                )
            operation = current
            self._log.debug(
                "shopify: bulk operation %s %s, %d objects",
                operation.id,
                operation.status.lower(),
                operation.object_count,
            )

    def _finished(self, operation: BulkOperation) -> BulkOperation:
        if operation.status == "COMPLETED":
            self._log.info(
                "shopify: bulk operation %s completed with %d objects",
                operation.id,
                operation.object_count,
            )
            return operation
        if operation.error_code == "ACCESS_DENIED":
            raise self._denied(operation)
        raise TransientError(
            f"Shopify's bulk operation {operation.id} ended {operation.status.lower()}"
            + (f" ({operation.error_code})" if operation.error_code else "")
            + "; the next attempt starts a new one"
        )

    def _denied(self, operation: BulkOperation) -> AuthError:
        scope = "read_orders" if self.stream == "orders" else "read_customers"
        return AuthError(
            f"Shopify denied bulk operation {operation.id} access to {self.stream} "
            f"(ACCESS_DENIED): the app needs the {scope} scope"
        )

    # -- the file

    def _download(self, operation: BulkOperation, join: _JoinFile) -> None:
        assert operation.url is not None
        lines = size = 0
        pending = b""
        with self.client.download(operation.url) as chunks:
            for chunk in chunks:
                size += len(chunk)
                parts = (pending + chunk).split(b"\n")
                pending = parts.pop()
                for part in parts:
                    if part.strip():
                        lines += 1
                        join.add(part, lines)
        if pending.strip():
            # A last line without its newline: fine if whole, a cut-off file if not.
            lines += 1
            join.add(pending, lines, last=True)
        join.finish()
        if operation.object_count and lines != operation.object_count:
            raise TransientError(
                f"the result of bulk operation {operation.id} is incomplete: {lines} of "
                f"{operation.object_count} objects downloaded"
            )
        if operation.file_size and size != operation.file_size:
            raise TransientError(
                f"the result of bulk operation {operation.id} is incomplete: {size} of "
                f"{operation.file_size} bytes downloaded"
            )
        orphan = join.orphan()
        if orphan is not None:
            raise DataError(
                f"Shopify's bulk {self.stream} result has {orphan[0]} whose parent "
                f"{orphan[1]} is not in the file"
            )
        self._log.info(
            "shopify: downloaded %d objects (%d bytes) of bulk operation %s",
            lines,
            size,
            operation.id,
        )


def _parse(line: bytes | str, number: int, *, last: bool = False) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        where = "the last line" if last else f"line {number}"
        raise TransientError(
            f"{where} of the bulk operation's result is not JSON: the download is "
            "truncated or corrupt"
        ) from None
    if not isinstance(value, dict):
        raise TransientError(f"line {number} of the bulk operation's result is not an object")
    return value


def _stamp(node: Mapping[str, Any]) -> int:
    """``updatedAt`` as UTC microseconds: sortable, whatever offset Shopify wrote."""
    value = node.get("updatedAt")
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(
            f"Shopify {node.get('id', '(no id)')}: field 'updatedAt' is not an ISO 8601 "
            f"timestamp (got {value!r})"
        ) from None
    if parsed.tzinfo is None:
        raise DataError(f"Shopify {node.get('id', '(no id)')}: 'updatedAt' has no UTC offset")
    return int((parsed - _EPOCH).total_seconds() * 1_000_000)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _number(gid: Any) -> int | None:
    """The number at the end of a GID."""
    tail = str(gid).rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


class _JoinFile:
    """A temporary SQLite database that joins children to parents and sorts parents.

    Parent lines are parsed as they arrive (their id and ``updatedAt`` are needed); a
    child line is only searched for its ``__parentId`` and parsed once, when it is
    joined: three in four lines of an order export are line items, and parsing JSON
    is most of the work here.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        # Scratch data, rebuilt from the download on any failure: no journal, no fsync,
        # a small page cache (the memory bound is the point of this file).
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -8000;
            PRAGMA temp_store = FILE;
            CREATE TABLE parents (seq INTEGER PRIMARY KEY, id TEXT, stamp INTEGER,
                                  body TEXT);
            CREATE TABLE children (seq INTEGER PRIMARY KEY, parent TEXT, body TEXT);
            """
        )
        self._db.execute("BEGIN")
        # Bodies are kept as text: json.loads of a str skips sniffing the encoding.
        self._parents: list[tuple[str, int, str]] = []
        self._children: list[tuple[str, str]] = []

    def add(self, line: bytes, number: int, *, last: bool = False) -> None:
        """Take line ``number`` of the file (``last``: it had no newline, may be cut)."""
        match = None if last else _PARENT_KEY.search(line)
        if match is not None:
            # An unescaped `"__parentId":"` can only be that key: inside a JSON string
            # its quotes would be escaped. Slashes come escaped (`gid:\/\/...`).
            raw = match.group(1)
            parent = json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
            self._children.append((parent, line.decode()))
            if len(self._children) >= _BATCH:
                self._flush()
            return
        node = _parse(line, number, last=last)
        if "__parentId" in node:
            self._children.append((str(node["__parentId"]), line.decode()))
        elif not isinstance(node.get("id"), str) or not node["id"]:
            raise DataError(f"line {number} of the bulk operation's result has no id")
        else:
            self._parents.append((node["id"], _stamp(node), line.decode()))
        if len(self._parents) >= _BATCH or len(self._children) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._parents:
            self._db.executemany(
                "INSERT INTO parents (id, stamp, body) VALUES (?, ?, ?)", self._parents
            )
            self._parents.clear()
        if self._children:
            self._db.executemany(
                "INSERT INTO children (parent, body) VALUES (?, ?)", self._children
            )
            self._children.clear()

    def finish(self) -> None:
        """Everything is in: commit, and index for the join and the sort."""
        self._flush()
        self._db.execute("COMMIT")
        self._db.executescript(
            """
            CREATE INDEX parents_order ON parents (stamp, id);
            CREATE INDEX parents_id ON parents (id);
            CREATE INDEX children_parent ON children (parent, seq);
            """
        )

    def orphan(self) -> tuple[str, str] | None:
        """A child whose parent never appeared (its id and the missing parent's)."""
        row = self._db.execute(
            "SELECT c.seq, c.body, c.parent FROM children c "
            "WHERE NOT EXISTS (SELECT 1 FROM parents p WHERE p.id = c.parent) LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        child = _parse(row[1], row[0])
        return str(child.get("id", "a line")), str(row[2])

    def nodes(self, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        """Parents ascending by (updatedAt, id), each with its children under the
        connection they came from, as a paginated query would have nested them."""
        floor = -(2**62) if since is None else _stamp({"updatedAt": since.isoformat()})
        rows = self._db.execute(
            "SELECT p.seq, p.body, c.seq, c.body FROM parents p "
            "LEFT JOIN children c ON c.parent = p.id "
            "WHERE p.stamp >= ? ORDER BY p.stamp, p.id, p.seq, c.seq",
            (floor,),
        )
        current: dict[str, Any] | None = None
        children: list[dict[str, Any]] = []
        current_seq = None
        for seq, parent_body, child_seq, child_body in rows:
            if seq != current_seq:
                if current is not None:
                    yield _nest(current, children)
                current, children, current_seq = json.loads(parent_body), [], seq
            if child_body is not None:
                child = _parse(child_body, child_seq)
                del child["__parentId"]
                children.append(child)
        if current is not None:
            yield _nest(current, children)

    def close(self) -> None:
        self._db.close()


_PARENT_KEY = re.compile(rb'"__parentId"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _nest(parent: dict[str, Any], children: list[dict[str, Any]]) -> dict[str, Any]:
    """Put ``children`` under the connections of ``parent`` they belong to."""
    # Shopify numbers line items in the order they were added: the best guide to an
    # order's line order once the file has shuffled them.
    children.sort(key=lambda c: _number(c.get("id")) or 0)
    for child in children:
        kind = str(child.get("id", "")).removeprefix("gid://shopify/").split("/")[0]
        key = _CONNECTIONS.get(kind) or kind[:1].lower() + kind[1:] + "s"
        parent.setdefault(key, {"nodes": []})["nodes"].append(child)
    return parent
