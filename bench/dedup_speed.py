"""The ``dedup`` validator against Stanford Alpaca's all-pairs ROUGE-L filter.

Alpaca (``generate_instruction.py``) tokenizes each new instruction with rouge_score's tokenizer,
scores it with ``rouge_scorer._score_lcs`` against every instruction in the pool (175 seed tasks
plus every instruction kept so far), keeps it when the maximum F is <= 0.7, and appends it to the
pool. The baseline here is that loop, faithfully, in one process (Alpaca spreads the pool over a
``multiprocessing.Pool``; that divides its time by the core count but not its O(N^2) growth).

    python bench/dedup_speed.py [--sizes 1000,5000,20000] [--sample 300] [--json FILE]

Instructions come from a seeded generator of Alpaca-like instructions (templates with many
slots) with planted near-duplicates: earlier instructions or seed tasks with 1 to 6 word edits,
around the 0.7 boundary. Sizes are prefixes of one stream. The baseline runs in full up to
``--full-max`` instructions; above that it is timed on ``--sample`` random queries at their
sequential position, each against its full pool (seed tasks plus the instructions before it
that the dedup validator kept: the pool the baseline sees when both agree), and its total time is
extrapolated from the measured time per pair times the run's total number of pairs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rouge_score import rouge_scorer

from groundset.core import Candidate, Document
from groundset.validators.dedup import DedupValidator, seed_instructions

THRESHOLD = 0.7
BATCH = 64

_OPENINGS = (
    "Write a {form} about {topic}",
    "Give me {num} tips for {activity}",
    "Explain the difference between {thing} and {thing2}",
    "Classify the following {item} as {label} or {label2}",
    "Summarize the following {doc} in {num} sentences",
    "Generate a list of {num} {adj} {noun} for {audience}",
    "What are the most {adj} ways to {verb} {noun}",
    "Rewrite the given {doc} to make it more {adj}",
    "Find the {attribute} of the given {item}",
    "Suggest a {adj} {noun} for {audience} who want to {verb} {noun2}",
    "Describe how to {verb} {noun} using {tool}",
    "Create a {form} that explains {topic} to {audience}",
    "Compare {thing} with {thing2} in terms of {attribute}",
    "Come up with a {adj} name for a {noun} that sells {noun2}",
    "Tell me whether the following {item} is {label} or not",
    "Identify the {attribute} in the following {doc}",
    "How can I {verb} {noun} without {tool}",
    "Plan a {num} day trip to {place} for {audience}",
    "Act as a tour guide in {place} and recommend {noun}",
    "Draft an {doc} announcing {topic} to {audience}",
    "List {num} facts about {topic} that {audience} would find {adj}",
    "Convert the following {doc} into a {form}",
    "Is {thing} better than {thing2} for {activity}",
    "Write a dialogue between {audience} and {audience2} about {topic}",
    "Pretend you are {thing} and describe your day",
    "Design a {adj} lesson plan on {topic} for {audience}",
    "Edit the {doc} below so that it is {adj} and {adj2}",
    "Why do {audience} struggle with {activity}",
    "Recommend {num} {noun} related to {topic}",
    "Detect whether the {item} mentions {topic}",
    "Outline a {form} on {topic} with {num} sections",
    "Answer the question about {topic} as if talking to {audience}",
    "Extract every {attribute} from the {doc} and return them as a table",
)
_TAILS = (
    "",
    "",
    " in {lang}",
    " in no more than {num} words",
    " and explain your reasoning",
    " for a {audience} audience",
    " using a {adj} tone",
    " with an example about {topic}",
    " as a numbered list",
    " and give one reason for each",
)
_SLOTS = {
    "form": "poem, short story, haiku, limerick, essay, tweet, headline, slogan, speech, dialogue, "
    "riddle, letter, product review, joke, song, blog post, cover letter, email, advertisement, "
    "press release, fable, sonnet, recipe card, toast, eulogy, podcast intro, rap verse",
    "topic": "climate change, machine learning, the ocean, friendship, coffee, ancient rome, "
    "volcanoes, black holes, gardening, chess, jazz, vaccines, electric cars, social media, "
    "honey bees, the moon landing, recycling, photosynthesis, the stock market, sleep, "
    "the french revolution, quantum computing, dinosaurs, inflation, yoga, bread baking, "
    "remote work, the immune system, renewable energy, cats, time travel, the internet, "
    "microplastics, penguins, the printing press, bitcoin, hurricanes, tea ceremonies",
    "num": "two, three, four, five, six, seven, eight, ten, twelve, 3, 5, 10, 20",
    "activity": "studying remotely, saving money, running a marathon, learning a language, "
    "cooking rice, public speaking, sleeping better, writing a resume, negotiating a salary, "
    "hiking safely, staying focused, moving house, raising a puppy, growing tomatoes, "
    "starting a podcast, painting with watercolors, reducing stress, traveling on a budget",
    "thing": "a virus, a bacterium, weather, climate, a lake, a pond, stocks, bonds, tea, "
    "coffee, a crocodile, an alligator, python, java, a democracy, a republic, an atom, "
    "a molecule, a comet, an asteroid, baking soda, baking powder, a violin, a viola, "
    "a latte, a cappuccino, rugby, american football, a sonnet, a haiku, rent, mortgage",
    "item": "sentence, tweet, product review, news headline, movie title, email, statement, "
    "question, recipe, customer complaint, job posting, poem, url, phone number",
    "label": "positive, negative, formal, informal, true, false, spam, fiction, sarcastic, "
    "relevant, urgent, offensive, a question, an opinion, a fact, safe, toxic",
    "doc": "paragraph, article, email, essay, abstract, poem, report, text, passage, "
    "meeting notes, speech, legal clause, product description, tweet thread",
    "adj": "creative, effective, unusual, simple, healthy, funny, formal, persuasive, concise, "
    "friendly, affordable, memorable, surprising, practical, polite, eco friendly, catchy, "
    "elegant, beginner friendly, quick, cheap, spooky, festive, kid friendly",
    "noun": "gift ideas, recipes, slogans, exercises, names, questions, strategies, games, "
    "books, habits, apps, hobbies, songs, snacks, team building activities, interview "
    "questions, costumes, board games, breakfast options, science projects, date ideas",
    "audience": "kids, teenagers, beginners, retirees, students, teachers, nurses, engineers, "
    "parents, tourists, managers, software developers, new employees, dog owners, "
    "college applicants, small business owners, introverts, night owls",
    "verb": "improve, organize, reduce, learn, clean, explain, choose, prepare, test, protect, "
    "repair, memorize, budget for, decorate, compare, store, recycle, teach",
    "attribute": "main idea, tone, key entities, sentiment, date, author, intent, length, "
    "topic, cost, target audience, main argument, word count, rhyme scheme, reading level",
    "tool": "a calculator, the internet, a car, any money, a computer, power tools, a recipe, "
    "a phone, a map, help from others, prior experience",
    "place": "paris, tokyo, the alps, new york, a national park, the beach, lisbon, kyoto, "
    "iceland, mexico city, the scottish highlands, cape town, a small village",
    "lang": "french, spanish, german, plain english, japanese, simple words, emojis, pirate speak",
}
_SLOT_WORDS = {k: [w.strip() for w in v.split(",")] for k, v in _SLOTS.items()}
_FILLER = sorted({w for phrases in _SLOT_WORDS.values() for p in phrases for w in p.split()})


def _fill(template: str, rng: random.Random) -> str:
    """Fill each {slot} with one phrase of its list; "{x2}" draws another phrase of "x"."""
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        key = out[start + 1 : end].rstrip("2")
        words = _SLOT_WORDS[key]
        out = out[:start] + rng.choice(words) + out[end + 1 :]
    return out


def _fresh(rng: random.Random) -> str:
    text = _fill(rng.choice(_OPENINGS) + rng.choice(_TAILS) + rng.choice(_TAILS), rng)
    return text[0].upper() + text[1:] + rng.choice((".", ".", "?", ":"))


def _edit(text: str, edits: int, rng: random.Random) -> str:
    """Substitute, delete, insert or swap words: a planted near-duplicate."""
    words = text.split()
    for _ in range(edits):
        op = rng.randrange(4)
        at = rng.randrange(len(words))
        if op == 0:
            words[at] = rng.choice(_FILLER)
        elif op == 1 and len(words) > 3:
            del words[at]
        elif op == 2:
            words.insert(at, rng.choice(_FILLER))
        elif at + 1 < len(words):
            words[at], words[at + 1] = words[at + 1], words[at]
    return " ".join(words)


def make_instructions(count: int, seeds: Sequence[str], seed: int = 0) -> list[str]:
    """About a third planted near-duplicates of earlier instructions or seed tasks."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        if out and rng.random() < 0.35:
            source = rng.choice(seeds) if rng.random() < 0.2 else rng.choice(out)
            out.append(_edit(source, rng.randint(1, 6), rng))
        else:
            out.append(_fresh(rng))
    return out


def as_candidates(texts: Sequence[str]) -> list[Candidate]:
    doc = Document("bench")
    return [
        Candidate(f"c{i:06d}", "bench", f"w{i}", doc, {"instruction": t}, t)
        for i, t in enumerate(texts)
    ]


def run_dedup(texts: Sequence[str]) -> tuple[float, list[float], float]:
    """Wall time of scoring in batches (pool and seed loading included), the maxima, and the
    time of replaying the same candidates into a fresh validator (decisions only)."""
    candidates = as_candidates(texts)
    validator = DedupValidator(DedupValidator.Options(alpaca_filters=False))
    start = time.perf_counter()
    rows = []
    for i in range(0, len(candidates), BATCH):
        rows.extend(validator.score(candidates[i : i + BATCH]))
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    DedupValidator(DedupValidator.Options(alpaca_filters=False)).replay(candidates)
    replay = time.perf_counter() - start
    return elapsed, [row["max_rouge_l"] for row in rows], replay


class Alpaca:
    """Alpaca's loop: pre-tokenized pool, ``_score_lcs(new, each)``, top-10 and mean as it
    records them, keep when max <= 0.7."""

    def __init__(self, seeds: Sequence[str]) -> None:
        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self.texts = list(seeds)
        self.tokens = [self.scorer._tokenizer.tokenize(t) for t in seeds]

    def query(self, text: str, pool_size: int | None = None) -> tuple[float, list[str]]:
        new = self.scorer._tokenizer.tokenize(text)
        pool = self.tokens if pool_size is None else self.tokens[:pool_size]
        scores = [rouge_scorer._score_lcs(new, tokens).fmeasure for tokens in pool]
        top = [self.texts[i] for i in np.argsort(scores)[-10:][::-1]]
        float(np.mean(scores))
        return max(scores), top

    def add(self, text: str) -> None:
        self.texts.append(text)
        self.tokens.append(self.scorer._tokenizer.tokenize(text))


def baseline_full(seeds: Sequence[str], texts: Sequence[str]) -> tuple[float, list[float]]:
    alpaca = Alpaca(seeds)
    start = time.perf_counter()
    maxima = []
    for text in texts:
        best, _ = alpaca.query(text)
        maxima.append(best)
        if best <= THRESHOLD:
            alpaca.add(text)
    return time.perf_counter() - start, maxima


def baseline_sampled(
    seeds: Sequence[str], texts: Sequence[str], dedup_max: Sequence[float], sample: int
) -> dict:
    """Sampled queries against the pool the dedup decisions built; time extrapolated per pair."""
    alpaca = Alpaca(seeds)
    pool_before = []  # pool size seen by query i
    for text, best in zip(texts, dedup_max, strict=True):
        pool_before.append(len(alpaca.texts))
        if best <= THRESHOLD:
            alpaca.add(text)
    picks = sorted(random.Random(1).sample(range(len(texts)), sample))
    elapsed, pairs, agree, exact = 0.0, 0, 0, 0
    for i in picks:
        start = time.perf_counter()
        best, _ = alpaca.query(texts[i], pool_before[i])
        elapsed += time.perf_counter() - start
        pairs += pool_before[i]
        agree += (best > THRESHOLD) == (dedup_max[i] > THRESHOLD)
        exact += best == dedup_max[i]
    total_pairs = sum(pool_before)
    return {
        "baseline_s": elapsed / pairs * total_pairs,
        "baseline_extrapolated": True,
        "baseline_queries_timed": sample,
        "baseline_measured_s": elapsed,
        "pairs_total": total_pairs,
        "agreement": agree / sample,
        "max_equal": exact / sample,
        "compared": sample,
    }


def measure(seeds: Sequence[str], texts: Sequence[str], full_max: int, sample: int) -> dict:
    dedup_s, dedup_max, replay_s = run_dedup(texts)
    row: dict = {"n": len(texts), "dedup_s": dedup_s, "replay_s": replay_s}
    row["kept"] = sum(best <= THRESHOLD for best in dedup_max)
    if len(texts) <= full_max:
        base_s, base_max = baseline_full(seeds, texts)
        agree = sum(
            (a > THRESHOLD) == (b > THRESHOLD) for a, b in zip(base_max, dedup_max, strict=True)
        )
        exact = sum(a == b for a, b in zip(base_max, dedup_max, strict=True))
        row |= {"baseline_s": base_s, "baseline_extrapolated": False, "compared": len(texts)}
        row |= {"agreement": agree / len(texts), "max_equal": exact / len(texts)}
    else:
        row |= baseline_sampled(seeds, texts, dedup_max, min(sample, len(texts)))
    row["speedup"] = row["baseline_s"] / dedup_s
    return row


def slopes(rows: Sequence[dict], key: str) -> list[float]:
    """Growth exponents: log-log slope of time against size between consecutive sizes."""
    return [
        math.log(b[key] / a[key]) / math.log(b["n"] / a["n"]) for a, b in itertools.pairwise(rows)
    ]


def markdown(rows: Sequence[dict]) -> str:
    lines = [
        "| n | kept | dedup s | replay s | Alpaca loop s | speedup | agreement (queries) "
        "| max equal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = f"{r['baseline_s']:.1f}"
        if r["baseline_extrapolated"]:
            base += f" (extrapolated from {r['baseline_queries_timed']} queries)"
        lines.append(
            f"| {r['n']} | {r['kept']} | {r['dedup_s']:.2f} | {r['replay_s']:.2f} | {base} "
            f"| {r['speedup']:.0f}x | {r['agreement']:.2%} ({r['compared']}) "
            f"| {r['max_equal']:.2%} |"
        )
    dedup = ", ".join(f"{s:.2f}" for s in slopes(rows, "dedup_s"))
    base = ", ".join(f"{s:.2f}" for s in slopes(rows, "baseline_s"))
    lines.append("")
    lines.append(f"Growth exponents between sizes: dedup {dedup}; Alpaca loop {base}.")
    return "\n".join(lines)


#: at the largest size
SPEEDUP_TARGET = 100.0
AGREEMENT_TARGET = 0.99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--full-max", type=int, default=1000, help="largest full baseline run")
    parser.add_argument("--sample", type=int, default=300, help="baseline queries when sampled")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    seeds = seed_instructions()
    stream = make_instructions(sizes[-1], seeds)
    rows = []
    for size in sizes:
        rows.append(measure(seeds, stream[:size], args.full_max, args.sample))
        print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows))
    if args.json:
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
            "baseline": "Alpaca's loop in one process (rouge_score _score_lcs, no multiprocessing)",
            "batch": BATCH,
            "rows": rows,
            "growth_dedup": slopes(rows, "dedup_s"),
            "growth_baseline": slopes(rows, "baseline_s"),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    last = rows[-1]
    ok = last["speedup"] >= SPEEDUP_TARGET and last["agreement"] >= AGREEMENT_TARGET
    print(
        f"dedup: {last['n']} instructions, {last['speedup']:.0f}x Alpaca's loop (target >="
        f" {SPEEDUP_TARGET:.0f}x), agreement {last['agreement']:.2%} (target >="
        f" {AGREEMENT_TARGET:.0%}) {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
