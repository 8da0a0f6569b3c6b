"""The edges: sources (Kafka, HTTP, JSONL) and stores (SQLite, PostgreSQL/TimescaleDB)."""
