"""``Store``: the one way the rest of Evo reads and writes the record.

It is composed of four parts, each in a module of its own and each described, for its callers,
by a ``typing.Protocol`` in ``storage.protocols``:

- job life and control (``storage.jobs``, ``storage.job_leases``): ``JobLife``;
- the run recorder (``storage.recorder``): ``RunRecorder``;
- read models for the API, the dashboard and reports (``storage.reads``): ``ReadModels``;
- API keys (``storage.keys``): ``ApiKeys``;

over one connection (``storage.base``: engine, sessions, ``upgrade``, ``ping``).

Contract: reads return plain records (``JobRecord``...) or ``Candidate`` objects, never ORM rows.
Writes are whole units: ``write_batch`` commits everything it was given or nothing. A database
that cannot be reached raises ``StoreUnavailable``; other database errors (a duplicate id, an
unknown parent) propagate as SQLAlchemy exceptions; invalid arguments raise ``ValueError`` and a
missing job on update raises ``LookupError``.
"""

from __future__ import annotations

from storage.jobs import JobStore
from storage.keys import KeyStore
from storage.reads import ReadStore
from storage.recorder import RecorderStore


class Store(JobStore, RecorderStore, ReadStore, KeyStore):
    """Repository over the Evo database (SQLite file by default, Postgres for the service)."""
