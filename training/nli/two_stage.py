"""The grounding model's recipe in one command: the sentence-level NLI recipe first, then a
second stage on the document-level claims of ``../shared/data/grounding``.

    python -m training.nli.two_stage --out /tmp/nli-grounding

Why two stages: trained together from the base encoder, the document-level rows (three in four
"not supported", many of them claims that read like supported ones) kept the loss near ln 3 for
hundreds of steps, and the sentence-level task was learned far more slowly than alone (the
training README gives the run). Learned first, entailment is a skill the second stage adapts to
long premises and model-written claims, while a seeded share of the first stage's pairs is
replayed so that it is not forgotten.

Stage 1 is ``train`` with its defaults (the shipped sentence-level recipe; ``--no-export``):
its checkpoint goes to ``<out>-stage1-work/pytorch`` and is reused when it is already there, so a
second stage can be re-run alone. Stage 2 is ``train --grounding --init-from`` that checkpoint;
its arguments are :data:`STAGE2` plus whatever follows ``--`` on this command line. Both stages
use the same seed, so the command is reproducible on the same software.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.nli import train
from training.nli.model import checkpoint_dir

# Chosen on the dev splits (the training README gives the comparison).
STAGE2 = (
    "--grounding",
    "--replay", "0.35",
    "--epochs", "1",
    "--lr", "3e-5",
    "--warmup-steps", "50",
    "--eval-every", "100",
)  # fmt: skip


def stage1_args(out: Path, common: Sequence[str]) -> list[str]:
    """The sentence-level recipe, checkpoint only."""
    return ["--out", str(stage1_out(out)), "--no-export", *common]


def stage1_out(out: Path) -> Path:
    return out.with_name(out.name + "-stage1")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="final model folder")
    parser.add_argument("--seed", default="13")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--data", default=None, help="shared/data/nli folder")
    parser.add_argument("--limit", type=int, default=0, help="smoke test: cap every split")
    parser.add_argument("stage2", nargs="*", help="after --: more arguments for stage 2")
    args = parser.parse_args(argv)
    common = ["--seed", args.seed, "--threads", args.threads]
    if args.data:
        common += ["--data", args.data]
    if args.limit:
        common += ["--limit", str(args.limit), "--synthetic", "100"]
    stage1 = train.parse_args(stage1_args(args.out, common))
    checkpoint = checkpoint_dir(stage1)
    if (checkpoint / "training.json").exists() and not _partial(checkpoint):
        train.log(f"stage 1: reusing {checkpoint}")
    else:
        train.log("stage 1: the sentence-level recipe")
        train.run(stage1)
    train.log("stage 2: document-level claims")
    train.main(["--out", str(args.out), "--init-from", str(checkpoint), *common, *STAGE2,
                *args.stage2])  # fmt: skip


def _partial(checkpoint: Path) -> bool:
    """A stage 1 stopped mid-way leaves a checkpoint marked partial: train it again."""
    import json

    training = json.loads((checkpoint / "training.json").read_text(encoding="utf-8"))
    return bool(training.get("partial"))


if __name__ == "__main__":
    sys.exit(main())
