"""The MySQL/MariaDB error numbers the service acts on, named from pymysql.constants, and how to read one."""

from __future__ import annotations

from pymysql.constants import CR, ER

# MariaDB's "connection was killed" (KILL CONNECTION, max_statement_time): not in pymysql's MySQL-derived table.
ER_CONNECTION_KILLED = 1927

# "The DB, not this message, is the problem": a batch that met one of these is retried, never recorded as failed.
TRANSIENT = frozenset(
    {
        ER.CON_COUNT_ERROR,  # too many connections
        ER.LOCK_WAIT_TIMEOUT,
        ER.LOCK_DEADLOCK,
        ER.SERVER_SHUTDOWN,
        ER_CONNECTION_KILLED,
        CR.CR_CONNECTION_ERROR,  # cannot connect (socket)
        CR.CR_CONN_HOST_ERROR,  # cannot connect (TCP)
        CR.CR_SERVER_GONE_ERROR,
        CR.CR_SERVER_LOST,
        CR.CR_SERVER_LOST_EXTENDED,
    }
)

# InnoDB rolled the whole transaction back (a deadlock victim) or gave up waiting for a row lock: running the same
# transaction again is safe.
ROLLED_BACK = frozenset({ER.LOCK_DEADLOCK, ER.LOCK_WAIT_TIMEOUT})


def error_number(exc: BaseException) -> int | None:
    """The server or client error number of a DB-API exception (SQLAlchemy's DBAPIError.orig), if it carries one."""
    args = getattr(exc, "args", None)
    code = args[0] if args else None
    return code if isinstance(code, int) else None
