"""The worked example of docs/calibration.md: a public labelled set, converted into the JSONL that
``groundset score`` takes, scored with its label column, then ``groundset calibrate``.

    python bench/calibration_guide.py --db /tmp/guide.duckdb        # convert, score, calibrate
    python bench/calibration_guide.py --convert-only --jsonl begin_dev.jsonl
    python bench/calibration_guide.py --widths                       # the "how many labels" table

The data are the dev files of the project's shared folder (``../shared/data/grounding``, beside
the checkout; ``--data DIR`` to point elsewhere): rows ``{document, claim, label}``, 1 when the
document supports the claim. They stay outside the repository (see that folder's NOTICE for
their licences). Held-out ``*_test`` files are refused: thresholds are chosen on dev data.

The whole example prints the same output as the three commands in the guide, and
tests/test_calibration_guide.py checks that the guide quotes it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "grounding"
SET = "begin_dev"
VALIDATORS = "overlap"
WIDTH_PRECISIONS = (0.9, 0.8, 0.5)
WIDTH_PASSES = (20, 50, 100, 200, 400)


def source_file(name: str, data: Path = DATA) -> Path:
    """The gzipped JSONL of one labelled set; held-out test splits are refused, so no threshold
    is ever tuned on them."""
    if name.endswith("_test"):
        raise SystemExit(f"{name}: a held-out test split; use a *_dev file")
    path = data / f"{name}.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"no {path}: pass --data DIR (the folder of the *_dev.jsonl.gz files)")
    return path


def convert(source: Path, out: Path) -> int:
    """One ``{document, answer, label}`` line per row: the claim checked against the document is
    the answer ``groundset score`` grounds. Returns the number of rows."""
    rows = 0
    with gzip.open(source, "rt", encoding="utf-8") as lines, out.open("w", encoding="utf-8") as f:
        for line in lines:
            row = json.loads(line)
            record = {"document": row["document"], "answer": row["claim"], "label": row["label"]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows += 1
    return rows


def groundset(*args: str) -> str:
    """Run a ``groundset`` command of this environment; its output (it must succeed)."""
    exe = Path(sys.executable).parent / "groundset"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"groundset {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def score_command(jsonl: Path, db: Path, validators: str = VALIDATORS) -> list[str]:
    """The guide's ``groundset score`` line: no question column, the label column recorded."""
    return ["score", str(jsonl), "--question-field", "", "--validators", validators,
            "--label-field", "label", "--db", str(db), "--no-progress"]  # fmt: skip


def example(db: Path, jsonl: Path, name: str, data: Path, validators: str) -> str:
    """Convert, score and calibrate into a new store; what the two commands print."""
    if db.exists():
        raise SystemExit(f"{db} exists: the example starts from a new store, pass another --db")
    convert(source_file(name, data), jsonl)
    scored = groundset(*score_command(jsonl, db, validators))
    return scored + groundset("calibrate", "--db", str(db))


def half_widths(seed: int = 0, trials: int = 2000, resamples: int = 1000) -> list[dict]:
    """Half-width of a 95 % interval for precision ``p`` measured on ``n`` labelled passes: by
    the normal approximation of the binomial, 1.96 * sqrt(p (1 - p) / n), and by simulation of
    what calibrate does (the mean half-width of the bootstrap percentile interval over
    ``trials`` labelled samples drawn with precision ``p``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    table = []
    for p in WIDTH_PRECISIONS:
        for n in WIDTH_PASSES:
            normal = 1.96 * (p * (1 - p) / n) ** 0.5
            good = rng.binomial(n, p, size=trials)
            # a resample of n passes holding k good ones draws its good ones binomially
            boot = rng.binomial(n, good[:, None] / n, size=(trials, resamples)) / n
            low, high = np.percentile(boot, [2.5, 97.5], axis=1)
            table.append({"precision": p, "passes": n, "normal": round(normal, 3),
                          "bootstrap": round(float(np.mean((high - low) / 2)), 3)})  # fmt: skip
    return table


def widths_markdown(table: list[dict]) -> str:
    """The guide's table: one row per precision, normal approximation (bootstrap simulated)."""
    lines = ["| precision | " + " | ".join(f"n = {n}" for n in WIDTH_PASSES) + " |",
             "|---|" + "---|" * len(WIDTH_PASSES)]  # fmt: skip
    for p in WIDTH_PRECISIONS:
        cells = [f"±{r['normal']:.2f} ({r['bootstrap']:.2f})" for r in table
                 if r["precision"] == p]  # fmt: skip
        lines.append(f"| {p:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a new store file for the example")
    parser.add_argument("--set", default=SET, help=f"a *_dev set [default: {SET}]")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the *.jsonl.gz files")
    parser.add_argument("--validators", default=VALIDATORS, help="comma-separated validator ids")
    parser.add_argument("--jsonl", type=Path, help="the converted file [default: beside --db]")
    parser.add_argument("--convert-only", action="store_true", help="only write --jsonl")
    parser.add_argument("--widths", action="store_true", help="print the interval-width table")
    args = parser.parse_args(argv)
    if args.widths:
        print(widths_markdown(half_widths()))
        return 0
    if args.convert_only:
        if args.jsonl is None:
            parser.error("--convert-only needs --jsonl FILE")
        rows = convert(source_file(args.set, args.data), args.jsonl)
        print(f"{args.jsonl}: {rows} rows")
        return 0
    if args.db is None:
        parser.error("--db FILE (a new store), --convert-only or --widths")
    jsonl = args.jsonl or args.db.with_name(f"{args.set}.jsonl")
    print(example(args.db, jsonl, args.set, args.data, args.validators), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
