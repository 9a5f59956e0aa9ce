"""Store tests run on SQLite (a file in `tmp_path`) and on PostgreSQL (a schema of its own in
the session's database): the `store_url`, `new_store` and `store` fixtures live in
tests/component/conftest.py, shared with the events tests."""
