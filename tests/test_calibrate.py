"""`groundset calibrate`: each metric measured on the user's labelled candidates, with bootstrap
intervals, and the loosest threshold whose precision's lower bound meets the target."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from groundset.core.calibration import _metric
from groundset.core.cli import cli
from groundset.core.intervals import auroc
from groundset.core.store import Store

DOCUMENT = "The {site} plant opened in {year} and employs {staff} people in three shifts."


def invoke(*args: object, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def labelled_rows(n: int, seed: int = 0) -> list[dict]:
    """Answers that copy their document (labelled good, mostly) and answers that invent (bad,
    mostly): lexical overlap separates them well, not perfectly."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        facts = {"site": f"Site {i}", "year": 1990 + i % 30, "staff": 100 + i}
        document = DOCUMENT.format(**facts)
        faithful = rng.random() < 0.5
        if faithful:
            answer = f"The {facts['site']} plant opened in {facts['year']}."
        else:
            answer = f"The {facts['site']} factory was founded by engineers from abroad."
        label = faithful if rng.random() < 0.9 else not faithful
        rows.append({"document": document, "answer": answer, "human": int(label)})
    return rows


@pytest.fixture
def labelled_store(tmp_path) -> Path:
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in labelled_rows(80)))
    db = tmp_path / "s.duckdb"
    invoke("score", data, "--db", db, "--validators", "overlap", "--question-field", "",
           "--label-field", "human", "--no-progress")  # fmt: skip
    return db


def test_calibrate_reports_every_metric_against_the_labels(labelled_store):
    result = json.loads(invoke("calibrate", "--db", labelled_store, "--format", "json").output)
    assert result["labelled"] == 80 and result["aspect"] == "overall"
    by_metric = {m["metric"]: m for m in result["metrics"]}
    precision = by_metric["overlap.token_precision"]
    with Store(labelled_store, read_only=True) as store:
        pairs = store.query(
            "SELECT s.value, l.value FROM latest_scores s JOIN latest_labels l"
            " USING (candidate_id) WHERE s.validator = 'overlap' AND s.metric = 'token_precision'"
        ).rows
    x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    good, bad = x[y == 1], x[y == 0]
    brute = np.mean([(g > b) + 0.5 * (g == b) for g in good for b in bad])
    assert precision["auroc"]["value"] == pytest.approx(brute)
    auroc = precision["auroc"]
    assert auroc["low"] < auroc["value"] < auroc["high"]
    default = precision["default"]
    passing = x >= default["threshold"]
    assert default["passed"] == passing.sum()
    assert default["precision"]["value"] == pytest.approx(y[passing].mean())
    assert default["recall"]["value"] == pytest.approx(y[passing].sum() / y.sum())


def test_the_recommended_threshold_is_the_loosest_meeting_the_target_at_its_lower_bound():
    rng = np.random.default_rng(3)
    x = np.round(rng.random(400), 2)
    y = (rng.random(400) < x).astype(float)  # higher scores are more often good
    counts = rng.multinomial(400, np.full(400, 1 / 400), size=500)
    m = _metric("m", True, 0.5, x, y, np.ones(400), counts, 0.8)
    assert m.recommended is not None and m.recommended.precision.low >= 0.8
    # one step looser passes the next candidates down, and its lower bound falls short
    looser = sorted({v for v in x if v < m.recommended.threshold}, reverse=True)[0]
    relaxed = _metric("m", True, looser, x, y, np.ones(400), counts, 0.8).default
    assert relaxed is not None and relaxed.precision.low < 0.8
    # lower-is-better metrics are read the other way round
    flipped = _metric("m", False, -0.5, -x, y, np.ones(400), counts, 0.8)
    assert flipped.recommended is not None
    assert flipped.recommended.threshold == pytest.approx(-m.recommended.threshold)


def test_auroc_counts_ties_as_half():
    x, y = np.array([0.1, 0.5, 0.5, 0.9]), np.array([0.0, 0.0, 1.0, 1.0])
    counts = np.ones((4, 4), dtype=int)
    assert auroc(x, y, np.ones(len(y)), counts).value == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_too_few_labels_or_one_class_is_a_one_line_error(tmp_path):
    db = tmp_path / "s.duckdb"
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(r) + "\n" for r in labelled_rows(12)))
    invoke("score", few, "--db", db, "--validators", "overlap", "--question-field", "",
           "--label-field", "human", "--no-progress")  # fmt: skip
    result = invoke("calibrate", "--db", db, ok=False)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "calibrate needs at least 20 labelled candidates of both kinds" in result.output
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps({**r, "human": 1}) + "\n" for r in labelled_rows(30)))
    invoke("score", same, "--db", db, "--validators", "overlap", "--question-field", "",
           "--label-field", "human", "--no-progress")  # fmt: skip
    one_class = invoke("calibrate", "--db", db, ok=False)
    assert "the runs have 30 labelled candidates (30 good, 0 bad)" in one_class.output


def test_the_text_report_names_each_metric_with_its_intervals(labelled_store):
    out = invoke("calibrate", "--db", labelled_store, "--target-precision", "0.75").output
    assert out.startswith("1 run, aspect overall: 80 labelled candidates")
    assert "overlap.token_precision (higher is better; 80 labelled" in out
    assert "  AUROC 0." in out and " [0." in out
    assert "recommended" in out or "no recommendation:" in out


def test_the_guides_example_is_what_calibrate_prints(labelled_store):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "calibration.md").read_text()
    example = guide.split("## An example", 1)[1].split("```\n", 2)[1]
    out = invoke("calibrate", "--db", labelled_store, "--target-precision", "0.75").output
    assert len(example.splitlines()) >= 10, example
    for line in example.splitlines():
        assert line in out.splitlines(), line


def test_what_the_defaults_and_each_policy_accept_is_measured_too(labelled_store, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text('[accept.strict]\nall = ["overlap.token_precision >= 0.99"]\n')
    invoke("accept", config, "--policy", "strict", "--db", labelled_store)
    result = json.loads(invoke("calibrate", "--db", labelled_store, "--format", "json").output)
    verdicts = {v["name"]: v["figures"] for v in result["policies"]}
    assert set(verdicts) == {"all default thresholds", "policy strict"}
    with Store(labelled_store, read_only=True) as store:
        for name, view in (("all default thresholds", "accepted_default"),
                           ("policy strict", "accepted")):  # fmt: skip
            passing = store.query(
                f"SELECT l.value FROM latest_labels l JOIN {view} a USING (candidate_id)"
            ).rows
            figures = verdicts[name]
            assert figures["passed"] == len(passing)
            precision = figures["precision"]
            assert precision["value"] == pytest.approx(np.mean([v for (v,) in passing]))
            assert precision["low"] <= precision["value"] <= precision["high"]


def test_by_measures_each_segment_with_enough_labels(tmp_path):
    db = tmp_path / "s.duckdb"
    for name, n, seed in (("plants", 50, 1), ("mills", 30, 2)):
        data = tmp_path / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in labelled_rows(n, seed)))
        invoke("score", data, "--db", db, "--validators", "overlap", "--question-field", "",
               "--label-field", "human", "--no-progress")  # fmt: skip
    both = invoke("calibrate", "plants", "mills", "--db", db, "--by", "run", "--format", "json")
    result = json.loads(both.output)
    assert result["labelled"] == 80 and result["by"] == "run"
    segments = {s["value"]: s for s in result["segments"]}
    assert {name: s["labelled"] for name, s in segments.items()} == {"plants": 50, "mills": 30}
    for name in ("plants", "mills"):
        alone = json.loads(invoke("calibrate", name, "--db", db, "--format", "json").output)
        auroc = {m["metric"]: m["auroc"]["value"] for m in alone["metrics"]}
        assert {m["metric"]: m["auroc"]["value"] for m in segments[name]["metrics"]} == auroc
    by_document = invoke("calibrate", "plants", "--db", db, "--by", "document").output
    assert by_document.count(": too few to measure (20 of both kinds needed)") == 50  # 1 each
    unknown = invoke("calibrate", "plants", "--db", db, "--by", "topic", ok=False)
    assert "--by 'topic': no labelled candidate has that field" in unknown.output


def test_an_export_records_its_precision_on_the_labels(labelled_store, tmp_path):
    out = invoke("export", "--db", labelled_store, "--min", "overlap.token_precision=0.99",
                 "-o", tmp_path / "good.jsonl").output  # fmt: skip
    with Store(labelled_store, read_only=True) as store:
        labels = store.query(
            "SELECT l.value FROM latest_labels l JOIN candidate_scores cs USING (candidate_id)"
            ' WHERE cs."overlap.token_precision" >= 0.99'
        ).rows
        recorded = store.query(
            "SELECT labelled, precision, precision_low, precision_high FROM exports"
        ).rows
    (labelled, precision, low, high), expected = recorded[0], np.mean([v for (v,) in labels])
    assert labelled == len(labels) and precision == pytest.approx(expected)
    assert low < precision <= high  # 33 labels: an interval with width
    assert f"precision on people's labels: {expected:.2f} [{low:.2f}, {high:.2f}]" in out
    assert f"from {len(labels)} labelled candidates of the export" in out


def test_a_few_passes_all_good_are_not_taken_for_certainty():
    # the top 5 are good, the rest bad: every bootstrap resample of the top 5 has precision 1
    x = np.linspace(1, 0, 100)
    y = np.r_[np.ones(5), np.zeros(95)]
    counts = np.random.default_rng(0).multinomial(100, np.full(100, 1 / 100), size=500)
    m = _metric("m", True, None, x, y, np.ones(100), counts, 0.9)
    assert m.recommended is None and "interval reaches down to 0.57" in (m.advice or "")
    # with 40 of them good, the Wilson bound (40 / 43.84) clears 0.9 and a threshold is chosen
    y = np.r_[np.ones(40), np.zeros(60)]
    m = _metric("m", True, None, x, y, np.ones(100), counts, 0.9)
    assert m.recommended is not None and m.recommended.passed == 40
    assert m.recommended.precision.low == pytest.approx(40 / (40 + 1.96**2), abs=1e-3)


def test_with_much_of_the_run_labelled_the_interval_is_for_the_unlabelled_rest(tmp_path):
    """Half of a run labelled: the precision of the other half differs from the labels' by twice
    the variance of one estimate, so the interval is sqrt 2 as wide as the labels' own. With
    every candidate labelled there is no rest, and the interval is the labels' own."""
    rows = labelled_rows(160, seed=4)
    data = tmp_path / "half.jsonl"
    data.write_text("".join(json.dumps({**r, "human": r["human"] if i % 2 else None}) + "\n"
                            for i, r in enumerate(rows)))  # fmt: skip
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(json.dumps(r) + "\n" for i, r in enumerate(rows) if i % 2))
    found = {}
    for name, path in (("half", data), ("whole", whole)):
        db = tmp_path / f"{name}.duckdb"
        invoke("score", path, "--db", db, "--validators", "overlap", "--question-field", "",
               "--label-field", "human", "--no-progress")  # fmt: skip
        out = json.loads(invoke("calibrate", "--db", db, "--format", "json").output)
        assert out["labelled"] == 80
        (metric,) = [m for m in out["metrics"] if m["metric"] == "overlap.token_precision"]
        found[name] = metric["default"]["precision"]
    half, whole_ = found["half"], found["whole"]
    assert half["value"] == pytest.approx(whole_["value"])  # the same 80 labels
    for side in ("low", "high"):
        own = abs(whole_[side] - whole_["value"])
        if own > 0 and 0 < half[side] < 1:
            assert abs(half[side] - half["value"]) == pytest.approx(own * 2**0.5, rel=1e-6)
    assert half["low"] < whole_["low"]


def test_the_stretch_for_the_rest_follows_the_labelled_share():
    from groundset.core.intervals import stretch_for_rest

    assert stretch_for_rest(500, 1000) == pytest.approx(2**0.5)
    assert stretch_for_rest(1000, 1_000_000) == pytest.approx(1.0005, abs=1e-4)
    assert stretch_for_rest(80, 80) == 1.0 and stretch_for_rest(10, None) == 1.0
