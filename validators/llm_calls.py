"""What the LLM validators (``judge``, ``grounding_judge``) share: their backend, built once with
the response cache, and their generation settings (greedy unless a temperature is given)."""

from __future__ import annotations

from typing import Any

from groundset.core import Backend, GenerationParams, create_backend

__all__ = ["judge_backend", "judge_params"]


def judge_backend(options: Any) -> Backend:
    """The backend ``options.backend`` names, with ``options.backend_options``, behind the
    response cache unless ``options.cache`` is off (``options.cache_path``, or the default
    file)."""
    cache = (options.cache_path or True) if options.cache else False
    return create_backend(options.backend, options.backend_options, cache=cache)


def judge_params(options: Any, max_new_tokens: int) -> GenerationParams:
    """Greedy at temperature 0, sampled with ``options.seed`` above it."""
    return GenerationParams(
        temperature=options.temperature,
        max_new_tokens=max_new_tokens,
        do_sample=options.temperature > 0,
        seed=options.seed,
    )
