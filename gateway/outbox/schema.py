"""The outbox file's schema: its migrations, and the shapes its record arrays are stored in.

Since m004 a row holds one or more records of one kind, rig and session, committed together
(`n` of them; the row's `seq` is the last one's, the others count down from it), as msgpack
arrays of their values one after the other. `shape` names the field list the arrays follow
(the `shapes` table), so rows written by an older build stay readable after an update changes
a record's fields. Shape 0 is a row from before m004: one record, as a msgpack map.
"""

from __future__ import annotations

import json
import sqlite3

import sqlite_utils
from sqlite_migrate import Migrations

from gateway.records import RECORD_TYPES, fields_of

MAP_SHAPE = 0  # one record stored as a msgpack map (written before m004)

migrations = Migrations("pitbox-outbox")


def m001_outbox(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: files written before migrations existed already have this table.
    db.execute("""CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        rig TEXT NOT NULL,
        session_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        body BLOB NOT NULL)""")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, seq)")


def m002_evictions(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS evictions (
        kind TEXT PRIMARY KEY,
        rows INTEGER NOT NULL,
        last_ns INTEGER NOT NULL)""")


def m003_priorities(db: sqlite_utils.Database) -> None:
    # Events and stint states had priorities 1 and 2 (events tied with laps); since m003 the
    # order is session 0 < lap 1 < event 2 < state 3 < sample 5. Rows buffered before keep
    # their place in each kind's order (by seq). Idempotent, as every migration here.
    db.execute("UPDATE outbox SET priority = 3 WHERE kind = 'state' AND priority = 2")
    db.execute("UPDATE outbox SET priority = 2 WHERE kind = 'event' AND priority = 1")


def m004_record_arrays(db: sqlite_utils.Database) -> None:
    # Existing rows are one record each, stored as a map: n = 1, shape = MAP_SHAPE.
    columns = {c.name for c in db["outbox"].columns}
    if "n" not in columns:
        db.execute("ALTER TABLE outbox ADD COLUMN n INTEGER NOT NULL DEFAULT 1")
    if "shape" not in columns:
        db.execute(f"ALTER TABLE outbox ADD COLUMN shape INTEGER NOT NULL DEFAULT {MAP_SHAPE}")
    db.execute("""CREATE TABLE IF NOT EXISTS shapes (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        fields TEXT NOT NULL,
        UNIQUE (kind, fields))""")


for _step in (m001_outbox, m002_evictions, m003_priorities, m004_record_arrays):  # in order
    migrations(name=_step.__name__)(_step)


def load_shapes(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[int, tuple[str, ...]]]:
    """(kind → the shape id this build writes, shape id → field names of every shape in the
    file). Registers this build's shapes that the file does not know yet."""
    known = {(kind, fields): sid for sid, kind, fields in
             conn.execute("SELECT id, kind, fields FROM shapes")}
    writes: dict[str, int] = {}
    with conn:
        for kind, cls in RECORD_TYPES.items():
            fields = json.dumps(fields_of(cls))
            sid = known.get((kind, fields))
            if sid is None:
                cur = conn.execute("INSERT INTO shapes (kind, fields) VALUES (?, ?)",
                                   (kind, fields))
                sid = known[(kind, fields)] = int(cur.lastrowid or 0)
            writes[kind] = sid
    return writes, {sid: tuple(json.loads(fields)) for (_, fields), sid in known.items()}
