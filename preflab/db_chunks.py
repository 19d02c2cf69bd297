"""Lists of query parameters cut to what one SQL statement of the database may carry.

SQLite refuses a statement with more host parameters than its ``SQLITE_LIMIT_VARIABLE_NUMBER``
(999 on builds before 3.32, 32,766 by default since, larger where a distribution raised it):
an ``id__in=`` over a list from a request or an import file must be cut into chunks read from
the live connection's limit. PostgreSQL's protocol carries up to 65,535 parameters per
statement (psycopg's server-side binding; client-side binding has no such limit).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connections

T = TypeVar("T")

SQLITE_OLD_LIMIT = 999  # what SQLite before 3.32 allows; used when the limit cannot be read
POSTGRES_LIMIT = 65_535
RESERVED = 50  # parameters a statement keeps for its other conditions (project, status, …)


def max_query_params(using: str = DEFAULT_DB_ALIAS) -> int:
    """How many host parameters one statement may carry on this connection."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        try:
            return int(connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        except (AttributeError, sqlite3.Error):  # Python < 3.11 has no getlimit
            return SQLITE_OLD_LIMIT
    return POSTGRES_LIMIT


def chunk_size(*, lists: int = 1, using: str = DEFAULT_DB_ALIAS) -> int:
    """Items per chunk when a statement carries ``lists`` lists of that length, with
    :data:`RESERVED` parameters left for its other conditions."""
    return max(1, (max_query_params(using) - RESERVED) // lists)


def chunked(
    items: Iterable[T], size: int | None = None, *, using: str = DEFAULT_DB_ALIAS
) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (default: what one ``__in=`` may carry)."""
    size = size or chunk_size(using=using)
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
