-- reasonseg-x leaderboard store, schema version 1.
-- Plain SQL (SQLite dialect kept to the portable subset) so a server database can replace the
-- embedded SQLite file: one row per distinct bundle, one evaluation per (bundle, ground truth,
-- protocol), one result row per group of an evaluation, and a log of refused bundles.

CREATE TABLE IF NOT EXISTS submissions (
    id                  INTEGER PRIMARY KEY,
    bundle_sha256       TEXT NOT NULL UNIQUE,      -- sha256 of submission.json: resubmission is idempotent
    model_name          TEXT NOT NULL,
    base_model          TEXT,
    parameter_count     INTEGER,
    tts_json            TEXT,                      -- test-time scaling settings, JSON object or NULL
    protocol_declared   TEXT NOT NULL,             -- the protocol the author validated with
    toolkit_version     TEXT NOT NULL,
    data_spec           TEXT NOT NULL,
    data_split          TEXT NOT NULL,
    data_fingerprint    TEXT NOT NULL,
    predictions_sha256  TEXT NOT NULL,
    submission_json     TEXT NOT NULL,             -- the whole document as received
    created             TEXT,                      -- as declared by the author
    received_at         TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS evaluations (
    id                  INTEGER PRIMARY KEY,
    submission_id       INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    gt_spec             TEXT NOT NULL,
    gt_split            TEXT NOT NULL,
    gt_fingerprint      TEXT NOT NULL,
    protocol            TEXT NOT NULL,
    scored_at           TEXT NOT NULL,
    toolkit_version     TEXT NOT NULL,
    counts_json         TEXT NOT NULL,
    metrics_json        TEXT NOT NULL,             -- the evaluator's metrics.json
    UNIQUE (submission_id, gt_fingerprint, protocol)
);

CREATE TABLE IF NOT EXISTS results (
    evaluation_id       INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    group_key           TEXT NOT NULL,             -- 'overall', 'reasoning_type', 'query_kind', ...
    group_value         TEXT NOT NULL,             -- '' for overall
    n                   INTEGER NOT NULL,
    giou                REAL,                      -- fractions in [0, 1]
    ciou                REAL,
    giou_lo             REAL,
    giou_hi             REAL,
    ciou_lo             REAL,
    ciou_hi             REAL,
    PRIMARY KEY (evaluation_id, group_key, group_value)
);

CREATE TABLE IF NOT EXISTS rejections (
    id                  INTEGER PRIMARY KEY,
    source_name         TEXT NOT NULL,             -- file or folder name as given to the host
    file_sha256         TEXT,                      -- of the archive (NULL for folders)
    reason              TEXT NOT NULL,
    rejected_at         TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS evaluations_by_gt ON evaluations (gt_fingerprint, protocol);
