"""Function code that uses its service's own SQL database through lamina.sql()."""

import os
import sqlite3
import time

import lamina


def _p(conn, statement):
    """`?` placeholders on SQLite, `%s` on PostgreSQL (psycopg)."""
    return statement if isinstance(conn, sqlite3.Connection) else statement.replace("?", "%s")


def setup(event, context):
    with lamina.sql() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id integer PRIMARY KEY, body text)")


def write(event, context):
    """Insert a note and count them, in one transaction; `fail` raises after the insert."""
    with lamina.sql() as conn:
        conn.execute(_p(conn, "INSERT INTO notes (id, body) VALUES (?, ?)"), (event["id"], "x"))
        if event.get("fail"):
            raise RuntimeError("rolled back")
        (count,) = conn.execute("SELECT count(*) FROM notes").fetchone()
    return {"count": count}


def count(event, context):
    with lamina.sql(autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM notes").fetchone()[0]


def hold(event, context):
    """Hold a connection a while in a block that also uses a table, as a busy handler would."""
    with lamina.sql() as conn:
        conn.execute("SELECT 1")
        lamina.table("hits").update("n", add={"n": 1}, if_exists=False)
        time.sleep(event.get("hold", 0.3))
    lamina.table("hits").get("n")
    return {"pid": os.getpid()}
