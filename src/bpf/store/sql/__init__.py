"""The SQL store: flows, history and record state in SQLite or PostgreSQL, on SQLAlchemy Core.

Where each concern lives:

- `tables`: the tables, their columns, the UTC datetime type;
- `statements`: the reads as selects, and the writes compiled into positional SQL;
- `rows`: `FlowRow` and history values to statement parameters and back, with the report
  columns of history rows (time in stage through `bpf._history.advance`);
- `connection`: engines from URLs, transactions, the kept write connection, the dropped-
  connection retry, and errors translated into `bpf.StoreError`;
- `schema`: creating the tables, the schema version, `MIGRATIONS`;
- `writer`: a write's ops in one transaction, the revision and duplicate checks;
- `reports`: the report queries;
- `store`: `SQLStore` itself, which opens, reads, and hands the rest to the above.
"""

from __future__ import annotations

from bpf.store.sql.connection import SYNCHRONOUS
from bpf.store.sql.schema import MIGRATIONS, SCHEMA_VERSION
from bpf.store.sql.store import SQLStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SYNCHRONOUS", "SQLStore"]
