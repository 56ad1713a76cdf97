"""groundset-example: the ``length_ratio`` validator, the ``echo`` backend and the
``one_question`` strategy. The entry point names this module, so groundset calls its hooks."""

from __future__ import annotations

from groundset.core import Register, hookimpl

from groundset_example.backend import EchoBackend
from groundset_example.strategy import OneQuestion
from groundset_example.validator import AnswerLengthRatio

__all__ = ["AnswerLengthRatio", "EchoBackend", "OneQuestion"]


@hookimpl
def register_validators(register: Register) -> None:
    register(AnswerLengthRatio)


@hookimpl
def register_backends(register: Register) -> None:
    register(EchoBackend)


@hookimpl
def register_strategies(register: Register) -> None:
    register(OneQuestion)
