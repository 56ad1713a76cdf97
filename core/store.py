"""The DuckDB store: every run, document, prompt, candidate and score, written in batches.

One process writes a store file at a time (DuckDB's rule); each batch of work lands in a single
transaction, so a crash loses at most the batch in flight and a rerun resumes after it."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from groundset.core.errors import StoreError
from groundset.core.migrations import apply_migrations, check_not_newer, pending_migrations
from groundset.core.phases import mark
from groundset.core.records import Metric
from groundset.core.rows import as_json, metric_rows
from groundset.core.sharing import (
    Notify,
    WriterLock,
    _first_line,
    connect,
    readers_waiting,
    tell,
    wait_for_readers,
)
from groundset.core.views import quote_identifier, refresh_views

if TYPE_CHECKING:
    from groundset.core.scoring import BatchScores

__all__ = ["DEFAULT_DB", "QueryResult", "Store", "quote_identifier"]

DEFAULT_DB = "groundset.duckdb"
#: batches slower than this (seconds) release the file between commits
RELEASE_AFTER_S = 1.0
#: write-ahead log size at which DuckDB folds it into the file. DuckDB's 16 MiB meant a
#: checkpoint every few batches of long prompts, and a checkpoint costs more as the store grows
#: (a commit took 17 ms in a new store and 53 ms at a million candidates; 11 ms at both with
#: this). A crash replays at most this much log when the file is next opened.
CHECKPOINT_THRESHOLD = "256MiB"
#: a run's ``updated_at`` (a sign of life for whoever watches the store) is moved at most this
#: often by its batches: one more statement in every commit costs fast batches ~10 %
TOUCH_EVERY_S = 1.0


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


#: DuckDB writes this at bytes 8-12 of every database file
_DUCKDB_MAGIC = b"DUCK"


def check_is_store(path: Path) -> None:
    """Refuse a ``--db`` that names an existing file of another kind (the dataset itself, say):
    DuckDB would open it as an empty in-memory database, and everything recorded would be lost
    when the command ends, with no error."""
    if path.is_dir():
        raise StoreError(f"{path}: a folder, not a store file; pass --db FILE.duckdb")
    if not path.is_file():
        return  # a new store
    with path.open("rb") as handle:
        header = handle.read(12)
    if header[8:12] != _DUCKDB_MAGIC:
        raise StoreError(
            f"{path}: not a groundset store (not a DuckDB database file); pass --db FILE.duckdb"
        )


class Store:
    """A groundset store file. One process writes it at a time; readers may open it while a
    run writes (``groundset.core.sharing`` says how the file is shared)."""

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        *,
        read_only: bool = False,
        upgrade: bool = True,
        notify: Notify | None = None,
        guest: bool = False,
    ) -> None:
        self.path = Path(path)
        check_is_store(self.path)
        self.read_only = read_only
        #: a guest writes a few rows (the review page's labels) without the writer's lock: it
        #: asks the writer to yield, as a reader does, and holds the file only for its write
        self.guest = guest and not read_only
        self._notify = notify
        self._lock: WriterLock | None = None
        self._db: duckdb.DuckDBPyConnection | None = None
        self._touched: dict[str, float] = {}
        if (read_only or self.guest) and not self.path.exists():
            raise StoreError(
                f"no store at {self.path}: run `groundset run CONFIG` first, or pass --db FILE"
            )
        if (read_only or self.guest) and upgrade:
            self._upgrade()
        if not read_only and not self.guest:
            self._lock = WriterLock(self.path)
            self._lock.acquire()
        try:
            check_not_newer(self.db, str(self.path))
            if not read_only and not self.guest:
                apply_migrations(self.db)
                self.refresh_views()
        except BaseException:
            self.close()
            raise

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        """The connection, opened again after :meth:`release` when next needed."""
        if self._db is None:
            self._db = connect(self.path, self.read_only, self._notify, ask=self.guest or None)
            if not self.read_only and not self.guest:
                self._db.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        return self._db

    def release(self) -> None:
        """Close the connection (not the store): other processes may open the file until this
        one needs it again. Only between transactions."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def yield_to_readers(self) -> bool:
        """At a batch boundary: if a reader is waiting for the file, let go of it until the
        reader is in. True when it did."""
        if self.read_only or self._db is None or not readers_waiting(self.path):
            return False
        self.release()
        wait_for_readers(self.path)
        return True

    def between_batches(self, batch_seconds: float) -> None:
        """Called after each committed batch. When batches are slow (a local model, a heavy
        validator) the file is let go of until the next commit, so readers get in at any time
        for the cost of reopening it (~50 ms a batch); when they are fast it is kept open and
        handed over only to a reader that asks."""
        if batch_seconds >= RELEASE_AFTER_S:
            self.release()
        else:
            self.yield_to_readers()

    def _upgrade(self) -> None:
        """Bring a store written by an older groundset up to this schema before reading it, so
        queries see the columns this version expects; a file in use is left as it is."""
        with connect(self.path, True, self._notify) as db:
            check_not_newer(db, str(self.path))
            if not pending_migrations(db):
                return
        try:
            Store(self.path).close()  # migrates and rebuilds the views
        except StoreError:
            return  # in use by a writer: read what is there

    def close(self) -> None:
        self.release()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, run: dict[str, Any]) -> bool:
        """Insert the run, or mark an existing one running again; True when resuming."""
        exists = self.db.execute("SELECT 1 FROM runs WHERE run_id = ?", [run["run_id"]]).fetchone()
        if exists:
            self.db.execute(
                "UPDATE runs SET status = 'running', error = NULL, planned = ?, model_id = ?,"
                " validators = ?, config = ?, versions = ?, updated_at = current_timestamp"
                " WHERE run_id = ?",
                [
                    run["planned"],
                    run["model_id"],
                    as_json(run["validators"]),
                    as_json(run["config"]),
                    as_json(run["versions"]),
                    run["run_id"],
                ],
            )
            return True
        json_keys = ("validators", "fields", "config", "versions")
        row = {**run, **{k: as_json(run[k]) for k in json_keys}, "status": "running"}
        self._insert("runs", pa.Table.from_pylist([row]))
        return False

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All of the block's writes or none. A write the disk refuses (full, or a file size
        limit) becomes one StoreError; the file keeps every earlier commit."""
        db = self.db
        db.execute("BEGIN TRANSACTION")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(duckdb.Error):
                db.execute("ROLLBACK")  # a failed COMMIT has already rolled back
            if isinstance(error, duckdb.Error) and _write_failed(error):
                raise StoreError(
                    f"cannot write store {self.path}: {_first_line(error)}. Every batch"
                    " committed before this one is kept: make room (or raise the file size"
                    " limit), then run the same command again to resume"
                ) from None
            raise

    def try_set_run_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """``set_run_status`` where the store may be unwritable (while a run fails): the status
        is best effort, the failure being reported matters more."""
        with contextlib.suppress(duckdb.Error, StoreError):
            self.set_run_status(run_id, status, error)

    def set_run_status(self, run_id: str, status: str, error: str | None = None) -> None:
        finished = "current_timestamp" if status == "complete" else "NULL"
        with self._transaction() as db:
            db.execute(
                f"UPDATE runs SET status = ?, error = ?, updated_at = current_timestamp,"
                f" finished_at = {finished} WHERE run_id = ?",
                [status, error, run_id],
            )

    def resolve_run(self, ref: str) -> str:
        """A run id from 'latest', a full id, a unique id prefix, or a run name (newest)."""
        if ref == "latest":
            rows = self.db.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, run_id LIMIT 1"
            ).fetchall()  # fetched to the end: DuckDB refuses more work beside an open result
            row = rows[0] if rows else None
            if row is None:
                raise StoreError(f"no runs in {self.path} yet: run `groundset run CONFIG` first")
            return row[0]
        rows = self.db.execute(
            "SELECT run_id FROM runs WHERE run_id LIKE ? || '%' OR name = ?"
            " ORDER BY created_at DESC",
            [ref, ref],
        ).fetchall()
        ids = list(dict.fromkeys(r[0] for r in rows))
        if not ids:
            raise StoreError(f"no run {ref!r} in {self.path}: `groundset runs` lists them")
        if ref in ids:
            return ref
        if len(ids) > 1:
            if ref not in self.run_names():
                raise StoreError(
                    f"run prefix {ref!r} is ambiguous: {', '.join(i[:12] for i in ids)}"
                )
            tell(
                f"run name {ref!r} matches {len(ids)} runs; using the newest, {ids[0][:12]}"
                " (pass its id to choose another; `groundset runs` lists them)",
                self._notify,
            )
        return ids[0]

    def run_names(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT name FROM runs").fetchall() if r[0]}

    def completed_work_ids(self, run_id: str) -> set[str]:
        """Work recorded for good: prompts that failed in the backend are not, and run again."""
        return self._work_ids(run_id, "<>")

    def error_work_ids(self, run_id: str) -> set[str]:
        """Prompts of the run recorded as backend errors, which the next run retries."""
        return self._work_ids(run_id, "=")

    def _work_ids(self, run_id: str, error_op: str) -> set[str]:
        rows = self.db.execute(
            f"SELECT DISTINCT work_id FROM candidates WHERE run_id = ? AND status {error_op}"
            " 'error'",
            [run_id],
        ).fetchall()
        return {r[0] for r in rows}

    # --- writing ----------------------------------------------------------------------------

    def register_metrics(self, declarations: Sequence[tuple[str, str, Sequence[Metric]]]) -> None:
        """Record what each validator declares, as (validator_id, version, metrics), and rebuild
        the views once for all of them (new metric columns, and the fields of new runs)."""
        rows = metric_rows(declarations)
        if rows:
            ids = sorted({row["validator"] for row in rows})
            with self._transaction() as db:
                db.execute("DELETE FROM metrics WHERE list_contains(?, validator)", [ids])
                self._insert("metrics", pa.Table.from_pylist(rows))
        self.refresh_views()

    def record_batch(
        self,
        run_id: str,
        documents: list[dict[str, Any]],
        prompts: list[dict[str, Any]],
        candidates: list[dict[str, Any]],
        scores: list[dict[str, Any]],
        details: list[dict[str, Any]] | None = None,
        failures: list[dict[str, Any]] | None = None,
        *,
        replace_errors: bool = True,
        labels: list[dict[str, Any]] | None = None,
    ) -> None:
        """Everything one batch produced, in one transaction: all of it lands or none does.
        Rows of earlier failed attempts at the same prompts are replaced, never duplicated
        (``replace_errors=False``: the caller knows there are none, and the delete, a scan of
        the run's rows, is skipped)."""
        with self._transaction() as db:
            if replace_errors:
                work_ids = sorted({row["work_id"] for row in candidates})
                db.execute(
                    "DELETE FROM candidates WHERE run_id = ? AND status = 'error'"
                    " AND list_contains(?, work_id)",
                    [run_id, work_ids],
                )
            self._insert_new("documents", "document_id", documents)
            self._insert_new("prompts", "prompt_id", prompts)
            self._insert("candidates", pa.Table.from_pylist(candidates))
            self._insert_scored(scores, details, failures)
            if labels:  # a labelled dataset's labels, with its rows (``groundset score``)
                self._insert("labels", pa.Table.from_pylist(labels))
            now = time.monotonic()
            if now - self._touched.get(run_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
                db.execute(
                    "UPDATE runs SET updated_at = current_timestamp WHERE run_id = ?", [run_id]
                )
                self._touched[run_id] = now
            mark("commit", len(candidates))  # inside the open transaction
        mark("committed", len(candidates))

    def mark_rescored(self, run_id: str, validator: str) -> None:
        """Before a validator adds a second version of scores to a run: ``latest_scores`` ranks
        this (run, validator)'s rows by time from now on (its other rows are read as they are).
        """
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO rescored VALUES (?, ?)", [run_id, validator])

    def record_scores(self, run_id: str, scored: BatchScores) -> None:
        """Scores of recorded candidates (re-scoring) with their details and validator
        failures, in one transaction."""
        with self._transaction():
            self._insert_scored(scored.scores, scored.details, scored.failures)

    def _insert_scored(
        self,
        scores: list[dict[str, Any]],
        details: list[dict[str, Any]] | None,
        failures: list[dict[str, Any]] | None,
    ) -> None:
        for table, rows in (("scores", scores), ("score_details", details),
                            ("validator_failures", failures)):  # fmt: skip
            if rows:
                self._insert(table, pa.Table.from_pylist(rows))

    def add_run_validators(self, run_id: str, validator_ids: list[str]) -> None:
        """Validators a re-scoring ran join the run's list (in the order first run)."""
        row = self.db.execute("SELECT validators FROM runs WHERE run_id = ?", [run_id]).fetchone()
        current = json.loads((row[0] if row else None) or "[]")
        merged = current + [v for v in validator_ids if v not in current]
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET validators = ?, updated_at = current_timestamp WHERE run_id = ?",
                [as_json(merged), run_id],
            )

    def record_labels(self, labels: list[dict[str, Any]], *, once: bool = False) -> int:
        """Labels (``rows.label_row``), all or none, in the order given; how many were new.
        With ``once``, a label whose ``origin`` is already recorded is left out: the review
        page replays its journal after a crash, and a label must not count twice."""
        if not labels:
            return 0
        with self._transaction() as db:
            if once:
                origins = [row["origin"] for row in labels]
                seen = {
                    origin
                    for (origin,) in db.execute(
                        "SELECT origin FROM labels WHERE list_contains(?, origin)", [origins]
                    ).fetchall()
                }
                labels = [row for row in labels if row["origin"] not in seen]
            if labels:
                self._insert("labels", pa.Table.from_pylist(labels))
        return len(labels)

    def remove_label(self, origin: str) -> int:
        """Take back the label recorded with ``origin`` (the review page's undo, of a label
        its labeller just made); how many rows went."""
        with self._transaction() as db:
            found = db.execute("SELECT count(*) FROM labels WHERE origin = ?", [origin]).fetchone()
            db.execute("DELETE FROM labels WHERE origin = ?", [origin])
        return int(found[0]) if found else 0

    def record_policy(
        self, policy: str, version: str, definition: str, run_id: str, results: pa.Table
    ) -> None:
        """One policy version's verdict on every candidate of a run, replacing an earlier
        evaluation of the same version, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO policies (policy, policy_version, definition) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [policy, version, definition],
            )
            db.execute(
                "DELETE FROM policy_results WHERE policy = ? AND policy_version = ? AND run_id = ?",
                [policy, version, run_id],
            )
            self._insert("policy_results", results)

    def record_export(self, row: dict[str, Any]) -> None:
        with self._transaction():
            self._insert("exports", pa.Table.from_pylist([row]))

    def _insert(self, table: str, rows: pa.Table) -> None:
        # DuckDB reads the Arrow table through the local variable's name (a replacement scan):
        # cheaper than register() + unregister(), which are two more catalog changes a commit
        _groundset_rows = rows
        self.db.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _groundset_rows")

    def _insert_new(self, table: str, key: str, rows: list[dict[str, Any]]) -> None:
        """Rows whose ``key`` (the table's primary key) is not stored yet: a lookup in the key's
        index per row, so the cost does not grow with the table."""
        unique = list({row[key]: row for row in rows}.values())
        if not unique:
            return
        _groundset_rows = pa.Table.from_pylist(unique)  # read by name, as above
        self.db.execute(f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM _groundset_rows")

    # --- reading ----------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> QueryResult:
        try:
            relation = self.db.execute(sql, list(params or []))
        except duckdb.Error as error:
            raise StoreError(f"SQL error: {_first_line(error)}") from None
        if relation.description is None:
            return QueryResult([], [])
        columns = [d[0] for d in relation.description]
        return QueryResult(columns, relation.fetchall())

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """A query's result as an Arrow table (DuckDB 2 renamed the method; accept both)."""
        try:
            relation = self.db.sql(sql, params=list(params or []))
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
            return fetch()
        except duckdb.Error as error:
            raise StoreError(f"SQL error: {_first_line(error)}") from None

    def metric_columns(self) -> list[str]:
        rows = self.db.execute(
            "SELECT validator || '.' || metric FROM metrics ORDER BY validator, metric"
        ).fetchall()
        return [r[0] for r in rows]

    def refresh_views(self) -> None:
        """Rebuild the views whose columns follow what is recorded (``core/views.py``)."""
        refresh_views(self.db)


def _write_failed(error: BaseException) -> bool:
    """Did the disk refuse a write (full, quota, file size limit, read-only)?"""
    text = str(error).lower()
    return isinstance(error, duckdb.IOException) or any(
        marker in text
        for marker in ("could not write", "no space", "file too large", "disk full", "read-only")
    )
