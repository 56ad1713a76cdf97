"""What every backend that calls a model server needs: many requests in flight, a client-side
rate limit, retries with exponential backoff and jitter that honour ``Retry-After``, a bounded
time per prompt, and a failure of one prompt recorded as that prompt's error, not the batch's.

A subclass implements :meth:`RemoteBackend.complete` for one prompt and raises
:class:`RetryableError` for what may pass (429, 5xx, timeouts, dropped connections),
:class:`FatalBackendError` for what no prompt will survive (bad credentials, unknown model), and
anything else for what is wrong with this one prompt.

This module is public API for third-party backends, like :mod:`groundset.core`: what
``__all__`` names is kept compatible. Besides the base class and its options, it holds the
helpers a backend that does not fit :class:`RemoteBackend` can use alone
(:class:`RetryPolicy`, :class:`RateLimiter`, :func:`parse_retry_after`, :func:`status_error`,
:func:`tls_verify`) and the secrets helpers: :func:`scrub` takes secret values out of a message
before it is raised or recorded, :func:`resolve_env` reads ``"$env:NAME"`` references (groundset
already resolves those in a backend's own options table before building it). See "Writing a
remote backend" in docs/writing-plugins.md."""

from __future__ import annotations

import dataclasses
import email.utils
import random
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from groundset.core.errors import BackendError, ConfigError, GroundsetWarning
from groundset.core.interfaces import Backend
from groundset.core.records import Generation, GenerationParams, Prompt
from groundset.core.secrets import resolve_env, scrub
from groundset.core.threads import DaemonThreadPool

__all__ = [
    "RETRYABLE_STATUSES",
    "FatalBackendError",
    "RateLimiter",
    "RemoteBackend",
    "RemoteOptions",
    "RetryPolicy",
    "RetryableError",
    "UnauthorizedError",
    "parse_retry_after",
    "resolve_env",
    "scrub",
    "status_error",
    "tls_verify",
]

#: statuses worth retrying: rate limited, or the server (or a proxy before it) failed
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class RetryableError(Exception):
    """A failure that may pass: the request is sent again after a backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnauthorizedError(RetryableError):
    """HTTP 401: the credentials are refreshed once (a new token) and the request sent again."""


class FatalBackendError(BackendError):
    """A failure every prompt would hit (wrong key, unknown model): the run stops with it."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(status: int, message: str, retry_after: str | None = None) -> Exception:
    """The exception a backend raises for an HTTP error ``status``."""
    text = f"HTTP {status}: {message}".strip().rstrip(":")
    if status == 401:
        return UnauthorizedError(text)
    if status in RETRYABLE_STATUSES:
        return RetryableError(text, parse_retry_after(retry_after))
    if status in (403, 404):
        return FatalBackendError(text)
    return RuntimeError(text)


def tls_verify(verify: bool | str) -> Any:
    """httpx's ``verify``: a CA bundle path becomes an SSL context (httpx deprecates paths)."""
    if isinstance(verify, str):
        import ssl

        return ssl.create_default_context(cafile=verify)
    return verify


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, within a per-prompt time budget."""

    max_attempts: int = 8
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    #: a prompt that has not succeeded after this long (retries included) is recorded as failed
    deadline_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: at least what the server asked for."""
        backoff = min(self.max_delay_s, self.initial_delay_s * 2**attempt)
        jittered = backoff * (0.5 + 0.5 * rng.random())
        return max(jittered, retry_after) if retry_after is not None else jittered


class RateLimiter:
    """At most ``rate`` request starts per second, shared by every thread of one backend (a
    token bucket holding one second's worth, so a burst never exceeds the rate for long)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._tokens = float(rate or 0)
        self._stamp = time.monotonic()

    def acquire(self) -> None:
        """Wait until one more request may start (at once when ``rate`` is falsy)."""
        if not self.rate:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


@dataclass(frozen=True)
class RemoteOptions:
    """The options every remote backend shares (subclasses add theirs)."""

    concurrency: int = 8
    max_requests_per_second: float | None = None
    timeout_s: float = 120.0
    max_attempts: int = 8
    deadline_s: float = 600.0


class RemoteBackend(Backend):
    """One request per prompt, up to ``concurrency`` at once, in a pool that lives as long as
    the backend; results come back in prompt order.

    A subclass sets ``backend_id``, ``Options`` (a subclass of :class:`RemoteOptions`) and
    ``secret_options``, and implements :meth:`complete`; :meth:`connect`, :meth:`disconnect`
    and :meth:`refresh_credentials` when it has a client or tokens. ``generate``, ``load`` and
    ``close`` are the machinery: leave them be."""

    overlaps_validation: ClassVar[bool] = True
    operational_options: ClassVar[tuple[str, ...]] = tuple(
        f.name for f in dataclasses.fields(RemoteOptions)
    )

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        opts = self.options
        if opts.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {opts.concurrency}")
        if opts.timeout_s <= 0 or opts.deadline_s <= 0 or opts.max_attempts < 1:
            raise ConfigError("timeout_s and deadline_s must be > 0 and max_attempts >= 1")
        self.retry = RetryPolicy(max_attempts=opts.max_attempts, deadline_s=opts.deadline_s)
        self.limiter = RateLimiter(opts.max_requests_per_second)
        self._pool: DaemonThreadPool | None = None
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self._connected = False
        self._connect_lock = threading.Lock()
        self._closing = threading.Event()
        self._fatal: FatalBackendError | None = None

    # --- what a subclass implements ---------------------------------------------------------

    def connect(self) -> None:
        """Open the client and check credentials, once, before the first request."""

    def complete(self, prompt: Prompt, params: GenerationParams) -> Generation:
        """One prompt's generation, or an exception (see the module docstring)."""
        raise NotImplementedError

    def refresh_credentials(self) -> bool:
        """Get a new token after a 401; False when there is nothing to refresh."""
        return False

    def disconnect(self) -> None:
        """Close the client."""

    # --- the machinery ----------------------------------------------------------------------

    def load(self) -> None:
        with self._connect_lock:
            if self._pool is None:
                self._closing.clear()
            if not self._connected:
                if getattr(self.options, "verify", True) is False:
                    warnings.warn(
                        f"{self.backend_id}: TLS certificate verification is off (verify = false"
                        " in the config): the server's identity is not checked",
                        GroundsetWarning,
                        stacklevel=2,
                    )
                self.connect()
                self._connected = True
            if self._pool is None:
                self._pool = DaemonThreadPool(
                    self.options.concurrency, f"groundset-{self.backend_id}"
                )

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        self.load()
        assert self._pool is not None
        futures = [self._pool.submit(self._with_retries, prompt, params) for prompt in prompts]
        results = [future.result() for future in futures]
        if self._fatal is not None:
            raise self._fatal
        return results

    def close(self) -> None:
        """Stop at once, also mid-batch (Ctrl-C): queued prompts are cancelled, retries stop
        waiting, and requests still in flight are abandoned (their threads are daemons, so they
        never hold the process open; nothing they return is recorded)."""
        self._closing.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._connected:
            self.disconnect()
            self._connected = False

    def _with_retries(self, prompt: Prompt, params: GenerationParams) -> Generation:
        started = time.monotonic()
        refreshed = False
        attempt = 0
        while True:
            if self._closing.is_set():
                return self._failed("stopped: the backend was closed", started)
            if self._fatal is not None:
                return self._failed(str(self._fatal), started)
            self.limiter.acquire()
            try:
                generation = self.complete(prompt, params)
            except FatalBackendError as error:
                self._fatal = self._fatal or FatalBackendError(scrub(str(error), self.secrets()))
                return self._failed(str(error), started)
            except UnauthorizedError as error:
                if refreshed or not self.refresh_credentials():
                    self._fatal = self._fatal or FatalBackendError(
                        scrub(
                            f"{self.backend_id}: the server refused the credentials ({error})",
                            self.secrets(),
                        )
                    )
                    return self._failed(str(error), started)
                refreshed = True
                continue
            except RetryableError as error:
                attempt += 1
                delay = self._delay(attempt - 1, error.retry_after)
                spent = time.monotonic() - started
                if attempt >= self.retry.max_attempts or spent + delay > self.retry.deadline_s:
                    tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                    return self._failed(f"{error} (gave up after {tries})", started)
                if self._closing.wait(delay):
                    return self._failed("stopped: the backend was closed", started)
                continue
            except Exception as error:  # one prompt's failure is recorded with that prompt
                return self._failed(f"{type(error).__name__}: {error}", started)
            if generation.latency_s is None:
                generation = _with_latency(generation, time.monotonic() - started)
            return generation

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return self.retry.delay(attempt, retry_after, self._rng)

    def secrets(self) -> list[str]:
        """The secret option values, scrubbed from every error message."""
        return [str(getattr(self.options, name, "") or "") for name in self.secret_options]

    def _failed(self, reason: str, started: float) -> Generation:
        return Generation(
            text="",
            model_id=self.model_id,
            latency_s=time.monotonic() - started,
            error=scrub(reason, self.secrets())[:500],
        )


def _with_latency(generation: Generation, seconds: float) -> Generation:
    from dataclasses import replace

    return replace(generation, latency_s=seconds)
