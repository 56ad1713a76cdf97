"""Append-only schema migrations of the store. A migration is never edited once released: change
the schema by adding ``mNNN_<what>``; each is applied once, in order, and recorded."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from groundset.core.errors import StoreError
from groundset.core.rows import groundset_version

__all__ = [
    "MIGRATIONS",
    "apply_migrations",
    "check_not_newer",
    "migration",
    "pending_migrations",
]

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Add ``fn`` to the ordered list of migrations under its function name."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: duckdb.DuckDBPyConnection) -> None:
    db.execute(
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            name VARCHAR,
            status VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            backend VARCHAR NOT NULL,
            model_id VARCHAR,
            validators JSON,
            fields JSON,
            config JSON NOT NULL,
            versions JSON NOT NULL,
            planned INTEGER,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP
        );
        CREATE TABLE documents (
            document_id VARCHAR PRIMARY KEY,
            title VARCHAR,
            text VARCHAR NOT NULL,
            source VARCHAR,
            metadata JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE prompts (
            prompt_id VARCHAR PRIMARY KEY,
            text VARCHAR NOT NULL,
            messages JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE candidates (
            candidate_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            work_id VARCHAR NOT NULL,
            candidate_index INTEGER NOT NULL,
            batch_index INTEGER NOT NULL,
            sample_index INTEGER NOT NULL,
            document_id VARCHAR NOT NULL,
            prompt_id VARCHAR,  -- NULL for candidates imported by `groundset score`
            fields JSON,
            raw_output VARCHAR NOT NULL,
            parse_ok BOOLEAN NOT NULL,
            parse_error VARCHAR,
            model_id VARCHAR NOT NULL,
            params JSON,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_s DOUBLE,
            stop_reason VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE scores (
            candidate_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            validator VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            value DOUBLE,
            validator_version VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE metrics (
            validator VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            description VARCHAR,
            low DOUBLE,
            high DOUBLE,
            higher_is_better BOOLEAN NOT NULL,
            default_threshold DOUBLE,
            validator_version VARCHAR NOT NULL,
            PRIMARY KEY (validator, metric)
        );
        CREATE TABLE exports (
            export_id VARCHAR PRIMARY KEY,
            run_id VARCHAR,
            path VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            filters JSON,
            rows INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- The newest score of each (candidate, validator, metric); re-scoring with another
        -- validator version adds rows to scores and the older ones stay there for comparison.
        CREATE VIEW latest_scores AS
        SELECT * FROM scores
        QUALIFY row_number() OVER (
            PARTITION BY candidate_id, validator, metric ORDER BY created_at DESC) = 1;
        -- Per candidate and validator: did every metric with a default threshold pass?
        CREATE VIEW validator_results AS
        SELECT s.run_id, s.candidate_id, s.validator,
               bool_and(CASE
                   WHEN m.default_threshold IS NULL THEN true
                   WHEN m.higher_is_better THEN s.value >= m.default_threshold
                   ELSE s.value <= m.default_threshold END) AS passed
        FROM latest_scores s JOIN metrics m USING (validator, metric)
        GROUP BY ALL;
        """
    )


@migration
def m002_candidate_status(db: duckdb.DuckDBPyConnection) -> None:
    """``status`` tells a parse failure from a prompt the backend failed on (``error``, with the
    reason in ``error``): errors are retried by the next run, parse failures are results."""
    db.execute(
        """
        ALTER TABLE candidates ADD COLUMN status VARCHAR DEFAULT 'ok';
        ALTER TABLE candidates ADD COLUMN error VARCHAR;
        UPDATE candidates SET status = 'parse_failed' WHERE NOT parse_ok;
        UPDATE candidates SET status = 'error', error = substr(parse_error, 16), parse_error = NULL
        WHERE parse_error LIKE 'backend error: %';
        """
    )


@migration
def m003_score_details(db: duckdb.DuckDBPyConnection) -> None:
    """What a validator says beyond numbers (the nearest duplicates, a judge's reasons), as
    JSON beside its scores."""
    db.execute(
        """
        CREATE TABLE score_details (
            candidate_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            validator VARCHAR NOT NULL,
            validator_version VARCHAR NOT NULL,
            details JSON NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """
    )


@migration
def m004_policies_and_export_provenance(db: duckdb.DuckDBPyConnection) -> None:
    """Accept policies as data: each version's rules, and per candidate whether it passed, so
    SQL can join on "accepted by strict v3"; exports say by which policy and hold a checksum."""
    db.execute(
        """
        CREATE TABLE policies (
            policy VARCHAR NOT NULL,
            policy_version VARCHAR NOT NULL,
            definition JSON NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (policy, policy_version)
        );
        CREATE TABLE policy_results (
            policy VARCHAR NOT NULL,
            policy_version VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            candidate_id VARCHAR NOT NULL,
            passed BOOLEAN NOT NULL,
            evaluated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- The candidates each policy accepts, by the version last evaluated on their run.
        CREATE VIEW accepted AS
        SELECT pr.policy, pr.policy_version, pr.run_id, pr.candidate_id
        FROM policy_results pr
        JOIN (SELECT policy, run_id, arg_max(policy_version, evaluated_at) AS policy_version
              FROM policy_results GROUP BY policy, run_id) latest
          USING (policy, run_id, policy_version)
        WHERE pr.passed;
        ALTER TABLE exports ADD COLUMN policy VARCHAR;
        ALTER TABLE exports ADD COLUMN policy_version VARCHAR;
        ALTER TABLE exports ADD COLUMN sha256 VARCHAR;
        ALTER TABLE exports ADD COLUMN provenance BOOLEAN;
        """
    )


@migration
def m005_validator_failures(db: duckdb.DuckDBPyConnection) -> None:
    """A validator that raised on a batch, per candidate: the run went on without its scores,
    and ``fail_closed`` says whether those candidates count as rejected."""
    db.execute(
        """
        CREATE TABLE validator_failures (
            candidate_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            validator VARCHAR NOT NULL,
            validator_version VARCHAR NOT NULL,
            error VARCHAR NOT NULL,
            fail_closed BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """
    )


@migration
def m006_fast_latest_scores(db: duckdb.DuckDBPyConnection) -> None:
    """``latest_scores`` without a window over every score. Only a validator that re-scored a
    run (``groundset validate`` with a new version) can leave two scores for one (candidate,
    metric); ``rescored`` lists those (run, validator) pairs, and only their rows are ranked.
    The rest are read as they are: at a million candidates the window cost seconds on every
    view built on it. ``default_failures`` is each latest score outside its metric's default
    threshold: a filter, where ``validator_results`` groups (and so cheaper to ask "does any
    validator reject this candidate")."""
    db.execute(
        """
        CREATE TABLE rescored (
            run_id VARCHAR NOT NULL,
            validator VARCHAR NOT NULL,
            PRIMARY KEY (run_id, validator)
        );
        INSERT INTO rescored
        SELECT DISTINCT run_id, validator FROM scores
        GROUP BY run_id, candidate_id, validator, metric HAVING count(*) > 1;
        CREATE OR REPLACE VIEW latest_scores AS
        SELECT * FROM scores s
        WHERE NOT EXISTS (
            SELECT 1 FROM rescored r WHERE r.run_id = s.run_id AND r.validator = s.validator)
        UNION ALL
        SELECT * FROM (
            SELECT s.* FROM scores s
            SEMI JOIN rescored r ON r.run_id = s.run_id AND r.validator = s.validator)
        QUALIFY row_number() OVER (
            PARTITION BY candidate_id, validator, metric ORDER BY created_at DESC) = 1;
        CREATE VIEW default_failures AS
        SELECT s.run_id, s.candidate_id, s.validator, s.metric, s.value, m.default_threshold
        FROM latest_scores s JOIN metrics m USING (validator, metric)
        WHERE m.default_threshold IS NOT NULL
          AND NOT CASE WHEN m.higher_is_better THEN s.value >= m.default_threshold
                       ELSE s.value <= m.default_threshold END;
        """
    )


@migration
def m007_labels(db: duckdb.DuckDBPyConnection) -> None:
    """People's verdicts on candidates: 1 (good) or 0 (bad) per aspect (``overall``,
    ``grounded``, ``relevant``, ``well_formed``), by labeller, with where each came from. Labels
    are never updated: a new one is added, and ``latest_labels`` keeps the newest per
    (candidate, aspect, labeller), in the order they were recorded (``seq``)."""
    db.execute(
        """
        CREATE SEQUENCE labels_seq;
        CREATE TABLE labels (
            seq BIGINT PRIMARY KEY DEFAULT nextval('labels_seq'),
            candidate_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            aspect VARCHAR NOT NULL DEFAULT 'overall',
            value INTEGER NOT NULL CHECK (value IN (0, 1)),
            labeller VARCHAR NOT NULL,
            note VARCHAR,
            source VARCHAR NOT NULL,
            origin VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE VIEW latest_labels AS
        SELECT * EXCLUDE (seq) FROM labels
        QUALIFY row_number() OVER (
            PARTITION BY candidate_id, aspect, labeller ORDER BY seq DESC) = 1;
        """
    )


@migration
def m008_export_precision(db: duckdb.DuckDBPyConnection) -> None:
    """What an export is worth on people's labels: how many exported candidates carry an
    ``overall`` label, and the share of good ones among them, with its bootstrap 95 % interval
    (NULL where none is labelled)."""
    db.execute(
        """
        ALTER TABLE exports ADD COLUMN labelled INTEGER;
        ALTER TABLE exports ADD COLUMN precision DOUBLE;
        ALTER TABLE exports ADD COLUMN precision_low DOUBLE;
        ALTER TABLE exports ADD COLUMN precision_high DOUBLE;
        """
    )


@migration
def m009_label_weights(db: duckdb.DuckDBPyConnection) -> None:
    """How a label was drawn, so estimates from a sampled queue stay unbiased: ``weight`` is the
    inverse of the chance the review queue had of showing the candidate, relative to a uniform
    draw (NULL for labels nobody sampled: imported, or from a scored file, which count as 1),
    and ``sampling`` the queue's phase (``stratified`` or ``active``)."""
    db.execute(
        """
        ALTER TABLE labels ADD COLUMN weight DOUBLE;
        ALTER TABLE labels ADD COLUMN sampling VARCHAR;
        CREATE OR REPLACE VIEW latest_labels AS
        SELECT * EXCLUDE (seq) FROM labels
        QUALIFY row_number() OVER (
            PARTITION BY candidate_id, aspect, labeller ORDER BY seq DESC) = 1;
        """
    )


@migration
def m010_calibrations(db: duckdb.DuckDBPyConnection) -> None:
    """Every ``groundset calibrate`` result, kept: which runs and labels it measured (their
    count and a fingerprint of the labels, so a later result on changed labels is told apart),
    the groundset version, the whole result as ``--format json`` prints it, and the learned
    policy it recorded, if one won."""
    db.execute(
        """
        CREATE TABLE calibrations (
            calibration_id VARCHAR PRIMARY KEY,
            run_ids VARCHAR[] NOT NULL,
            aspect VARCHAR NOT NULL,
            target_precision DOUBLE NOT NULL,
            labelled INTEGER NOT NULL,
            labels_fingerprint VARCHAR NOT NULL,
            groundset_version VARCHAR NOT NULL,
            result JSON NOT NULL,
            policy VARCHAR,
            policy_version VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """
    )


def _applied(db: duckdb.DuckDBPyConnection) -> dict[str, str | None] | None:
    """Applied migration name -> the groundset version that applied it (None before that was
    recorded); None for a file without the table."""
    columns = _columns(db)
    if not columns:
        return None
    version = "groundset_version" if "groundset_version" in columns else "NULL"
    rows = db.execute(f"SELECT name, {version} FROM schema_migrations").fetchall()
    return {name: written_by for name, written_by in rows}


def check_not_newer(db: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a store that a newer groundset migrated: its schema has migrations this version
    does not know, and writing (or even reading) it could misread their columns."""
    applied = _applied(db) or {}
    unknown = sorted(name for name in applied if name not in KNOWN)
    if unknown:
        writer = next((applied[n] for n in unknown if applied[n]), None) or "a newer version"
        raise StoreError(
            f"store {path} was written by groundset {writer} (schema {unknown[-1]}); this is"
            f" groundset {groundset_version()} (schema {MIGRATIONS[-1][0]}): upgrade groundset"
            " to open it"
        )


def pending_migrations(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations a store file still lacks (every one, for a new file)."""
    applied = _applied(db)
    if applied is None:
        return [name for name, _ in MIGRATIONS]
    return [name for name, _ in MIGRATIONS if name not in applied]


def apply_migrations(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply what has not been applied yet, all in one transaction, and return their names.

    Either every pending migration lands or none does: a failure (a full disk, a kill) leaves
    the file at the schema it had, and the next open tries again.
    """
    pending = pending_migrations(db)
    if not pending and "groundset_version" in _columns(db):
        return []
    version = groundset_version()
    db.execute("BEGIN TRANSACTION")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name VARCHAR PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
        if "groundset_version" not in _columns(db):
            db.execute("ALTER TABLE schema_migrations ADD COLUMN groundset_version VARCHAR")
        for name, fn in MIGRATIONS:
            if name in pending:
                fn(db)
                db.execute(
                    "INSERT INTO schema_migrations (name, groundset_version) VALUES (?, ?)",
                    [name, version],
                )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return pending


def _columns(db: duckdb.DuckDBPyConnection) -> set[str]:
    try:
        return {row[0] for row in db.execute("DESCRIBE schema_migrations").fetchall()}
    except duckdb.CatalogException:
        return set()


#: Every migration this version knows, by name (a store with others is from a newer groundset).
KNOWN = frozenset(name for name, _ in MIGRATIONS)
