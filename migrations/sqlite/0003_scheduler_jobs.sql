-- Issue 5: apscheduler's job store is the modalwatch database (connectors/jobstore.py), so the
-- evaluation schedule survives restarts and is shared by the replicas of one database.
-- next_run_time: UTC epoch seconds, NULL while paused; job_state: apscheduler's pickled job.
CREATE TABLE scheduler_jobs (
    id            TEXT PRIMARY KEY,
    next_run_time REAL,
    job_state     BLOB NOT NULL
);
CREATE INDEX scheduler_jobs_next ON scheduler_jobs (next_run_time);
