"""modalwatch's shell: config, the ingest pipeline, scheduled evaluation, review queue, reports, CLI."""

__version__ = "0.1.0"
