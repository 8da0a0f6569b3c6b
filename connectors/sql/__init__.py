"""SQL stores: one ``SqlStore`` per connection, repositories per aggregate, a dialect per database
(connectors/sqlite.py, connectors/postgres.py)."""
