"""Every LLM call a validator makes, answered once: a response cache in a side DuckDB file.

A judge re-scoring the same candidates with the same model and settings should cost nothing, and
a judge with anything changed must never read another's answers (ragas #2983). So the key is
everything that decides a reply: the backend, its model id, the backend options that are not
credentials or pacing (``secret_options``, ``operational_options``), the full prompt (text and
chat messages) and every generation parameter, the seed included. Only replies without an error
are kept: a timeout is asked again next time.

The file lives outside the run's store, so that scoring in several processes (Ray workers, a
second ``groundset validate``) shares it and a store can be copied without it:
``$GROUNDSET_RESPONSE_CACHE``, else ``$XDG_CACHE_HOME/groundset/responses.duckdb`` (by default
``~/.cache/groundset/responses.duckdb``). DuckDB lets one process write a file at a time; a
process that finds it locked answers that batch without the cache rather than wait or fail.
``groundset cache stats`` and ``groundset cache clear`` read and empty it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from groundset.core.errors import ConfigError
from groundset.core.interfaces import Backend
from groundset.core.records import Generation, GenerationParams, Prompt, content_hash
from groundset.core.secrets import SECRET_NAMES

__all__ = ["CachedBackend", "ResponseCache", "default_cache_path", "response_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key VARCHAR PRIMARY KEY,
    backend VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    generation JSON NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    hits BIGINT NOT NULL DEFAULT 0
)
"""


def default_cache_path() -> Path:
    """``$GROUNDSET_RESPONSE_CACHE``, else the user's cache folder."""
    given = os.environ.get("GROUNDSET_RESPONSE_CACHE")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "groundset" / "responses.duckdb"


def response_key(
    backend: Backend, options: dict[str, Any], prompt: Prompt, params: GenerationParams
) -> str:
    """What decides a reply, hashed: any difference here is a different entry."""
    left_out = set(SECRET_NAMES) | set(backend.secret_options) | set(backend.operational_options)
    kept = {k: v for k, v in sorted(options.items()) if k not in left_out}
    return content_hash(
        "response", backend.backend_id, backend.model_id, kept, prompt.text, prompt.messages,
        dataclasses.asdict(params),
    )  # fmt: skip


class ResponseCache:
    """Replies by key in one DuckDB file; every method opens and closes it, so processes take
    turns instead of holding a lock."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self._lock = threading.Lock()

    def _connect(self, read_only: bool = False) -> Any:
        import duckdb

        if read_only and not self.path.exists():
            return None
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError(f"response cache {self.path}: {error.strerror}") from None
        try:
            connection = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise CacheBusy(f"response cache {self.path} is in use: {error}") from None
            raise ConfigError(f"response cache {self.path}: not a DuckDB file ({error})") from None
        except duckdb.Error as error:
            raise ConfigError(f"response cache {self.path}: not a DuckDB file ({error})") from None
        if not read_only:
            connection.execute(_SCHEMA)
        return connection

    def get(self, keys: Sequence[str]) -> dict[str, Generation]:
        """The kept replies among ``keys``; each one found counts a hit."""
        if not keys:
            return {}
        with self._lock:
            connection = self._connect()
            try:
                rows = connection.execute(
                    "SELECT key, generation FROM responses WHERE key IN (SELECT unnest(?))",
                    [list(keys)],
                ).fetchall()
                if rows:
                    connection.execute(
                        "UPDATE responses SET hits = hits + 1 WHERE key IN (SELECT unnest(?))",
                        [[key for key, _ in rows]],
                    )
            finally:
                connection.close()
        return {key: Generation(**json.loads(kept)) for key, kept in rows}

    def put(self, entries: Sequence[tuple[str, str, Generation]]) -> None:
        """Keep ``(key, backend id, reply)`` for replies without an error."""
        rows = [
            (key, backend, reply.model_id, reply.text, json.dumps(dataclasses.asdict(reply)))
            for key, backend, reply in entries
            if reply.error is None
        ]
        if not rows:
            return
        with self._lock:
            connection = self._connect()
            try:
                connection.executemany(
                    "INSERT OR IGNORE INTO responses (key, backend, model, text, generation)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            finally:
                connection.close()

    def stats(self) -> list[dict[str, Any]]:
        """Entries and hits per backend and model."""
        connection = self._connect(read_only=True)
        if connection is None:
            return []
        try:
            rows = connection.execute(
                "SELECT backend, model, count(*), sum(hits), min(created_at), max(created_at)"
                " FROM responses GROUP BY ALL ORDER BY backend, model"
            ).fetchall()
        finally:
            connection.close()
        names = ("backend", "model", "entries", "hits", "first", "last")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def clear(self, backend: str | None = None, model: str | None = None) -> int:
        """Remove the entries of one backend and/or model (every entry when neither is given);
        how many were removed."""
        if not self.path.exists():
            return 0
        with self._lock:
            connection = self._connect()
            try:
                where = "WHERE (? IS NULL OR backend = ?) AND (? IS NULL OR model = ?)"
                params = [backend, backend, model, model]
                (count,) = connection.execute(
                    f"SELECT count(*) FROM responses {where}", params
                ).fetchone()
                connection.execute(f"DELETE FROM responses {where}", params)
            finally:
                connection.close()
        return int(count)


class CacheBusy(ConfigError):
    """Another process holds the cache file (scoring answers that batch without it)."""


class CachedBackend(Backend):
    """A backend whose replies come from the cache where it has them. ``calls`` and ``hits``
    count what this instance asked the model and what it did not have to."""

    backend_id = "cached"

    def __init__(self, inner: Backend, options: dict[str, Any], cache: ResponseCache) -> None:
        super().__init__(inner.options)
        self.inner = inner
        self.inner_options = dict(options)
        self.cache = cache
        self.calls = 0
        self.hits = 0
        self._warned = False

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def load(self) -> None:
        self.inner.load()

    def close(self) -> None:
        self.inner.close()

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        keys = [response_key(self.inner, self.inner_options, p, params) for p in prompts]
        try:
            kept = self.cache.get(keys)
        except CacheBusy as busy:
            self._warn(busy)
            kept = {}
        missing = [i for i, key in enumerate(keys) if key not in kept]
        replies: dict[int, Generation] = {}
        if missing:
            fresh = self.inner.generate([prompts[i] for i in missing], params)
            self.calls += len(missing)
            replies.update(zip(missing, fresh, strict=True))
            try:
                self.cache.put([(keys[i], self.inner.backend_id, replies[i]) for i in missing])
            except CacheBusy as busy:
                self._warn(busy)
        self.hits += len(prompts) - len(missing)
        return [replies[i] if i in replies else kept[keys[i]] for i in range(len(prompts))]

    def _warn(self, busy: CacheBusy) -> None:
        if not self._warned:
            import warnings

            from groundset.core.errors import GroundsetWarning

            warnings.warn(
                f"{busy}; this batch is answered without it",
                GroundsetWarning,
                stacklevel=2,
            )
            self._warned = True
