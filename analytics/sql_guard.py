"""Vetting of user SQL for the read-only analytics API.

`readonly=1` alone is not enough on chDB (measured on 26.9): it refuses INSERT, DDL and the
table functions file()/url()/remote(), but still allows the *function* `file('/path')`, the
table function `merge('system', …)`, `INTO OUTFILE`, reads of `system.*` and other databases, and
chDB executes every statement of a `;`-separated string. So the text is vetted by ClickHouse's
own parser and analyzer before it runs, and only the normalised statement is executed:

1. `formatQuery(<text as a literal>)` parses without executing: a syntax error or a second
   statement fails here; the result is one canonical statement with comments removed.
2. Only SELECT/WITH (plus `DESCRIBE TABLE t` and `SHOW TABLES`) pass; a top-level FORMAT,
   INTO OUTFILE or SETTINGS clause is refused (the API fixes format and limits itself).
3. `EXPLAIN AST` (parse only, nothing runs) refuses denied functions and table functions outside
   a small allow-list before the analyzer could evaluate them.
4. `EXPLAIN QUERY TREE` under the same read-only limits resolves every table the query reads,
   through aliases, CTEs and `IN db.table`; any table outside the store's database is refused.
"""

from __future__ import annotations

import re

from analytics.store.base import QueryError, Store, sql_string

#: Generators only: they read nothing outside the query.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values"}
)
#: Ordinary functions that reach files or tables outside the query's own FROM.
DENIED_FUNCTIONS = frozenset({"file", "joinget", "joingetornull"})
DENIED_FUNCTION_PREFIXES = ("dictget", "dicthas", "dictisin")

EXPLAIN_TIMEOUT_S = 10.0

_AST_FUNCTION = re.compile(r"^(\s*)Function (\S+)")
_AST_TABLE = re.compile(r"^\s*TableIdentifier (\S+)")
_TREE_TABLE = re.compile(r"\btable_name: (\S+)")
_TREE_TABLE_FUNCTION = re.compile(r"\btable_function_name: (\S+)")
_TREE_FUNCTION = re.compile(r"\bfunction_name: (\S+?),")
#: `SELECT 1` without FROM reads system.one (one row, one dummy column): harmless.
IMPLICIT_TABLES = frozenset({"system.one"})
_DESCRIBE = re.compile(r"^DESCRIBE TABLE (`?\w+`?)(?:\.(`?\w+`?))?$")
_FORBIDDEN_CLAUSES = (
    ("FORMAT ", "a FORMAT clause (ask for CSV with 'Accept: text/csv')"),
    ("INTO OUTFILE", "INTO OUTFILE"),
    ("SETTINGS ", "a SETTINGS clause (the API sets limits itself)"),
)


class UnsafeQuery(QueryError):
    """Valid SQL that the read-only API will not run."""


async def vet_readonly_sql(store: Store, text: str) -> str:
    """The single normalised statement to run for `text`, or `QueryError`/`UnsafeQuery`."""
    if not text.strip():
        raise UnsafeQuery("the query is empty")
    if "\0" in text:
        raise UnsafeQuery("the query contains a NUL character")
    statement = await _format(store, text)
    if statement.startswith(("DESCRIBE", "SHOW")):
        return _vet_metadata_statement(statement, store.database)
    if not statement.startswith(("SELECT", "WITH", "(")):
        raise UnsafeQuery("only SELECT statements are allowed (also DESCRIBE TABLE, SHOW TABLES)")
    for line in statement.splitlines():
        for keyword, what in _FORBIDDEN_CLAUSES:
            if line.startswith(keyword):
                raise UnsafeQuery(f"{what} is not allowed here")
    await _vet_functions(store, statement)
    await _vet_tables(store, statement)
    return statement


async def _format(store: Store, text: str) -> str:
    try:
        result = await store.query(
            f"SELECT formatQuery({sql_string(text)}) AS q", readonly=True, max_rows=1
        )
    except QueryError as exc:
        if "Multi-statements are not allowed" in exc.message:
            raise UnsafeQuery(
                "only one statement per request: remove the ';' and what follows it"
            ) from None
        raise QueryError(_without_wrapper(exc.message), exc.code) from None
    return str(result.rows[0]["q"]).strip()


def _without_wrapper(message: str) -> str:
    """Drop the echo of our `formatQuery(...)` wrapper from a syntax error message."""
    head, found, tail = message.partition("In scope SELECT formatQuery(")
    if not found:
        return message
    name = re.search(r"\(([A-Z_]+)\)\s*$", tail)
    head = head.rstrip(" :.")
    return f"{head}. ({name.group(1)})" if name else head


def _vet_metadata_statement(statement: str, database: str) -> str:
    if statement == "SHOW TABLES":
        return statement
    match = _DESCRIBE.match(statement)
    if match:
        qualifier = match.group(1).strip("`") if match.group(2) else database
        if qualifier == database:
            return statement
        raise UnsafeQuery(f"only tables of the {database!r} database can be read")
    raise UnsafeQuery("only SELECT statements are allowed (also DESCRIBE TABLE, SHOW TABLES)")


async def _explain(store: Store, kind: str, statement: str) -> list[str]:
    result = await store.query(
        f"EXPLAIN {kind} {statement}",
        readonly=True,
        max_rows=1_000_000,
        timeout_s=EXPLAIN_TIMEOUT_S,
    )
    return [str(row["explain"]) for row in result.rows]


async def _vet_functions(store: Store, statement: str) -> None:
    """Parse-only pass: functions and table functions, before anything is evaluated."""
    lines = await _explain(store, "AST", statement)
    for index, line in enumerate(lines):
        table = _AST_TABLE.match(line)
        if table:
            _check_table(table.group(1), store.database, qualified_only=True)
        function = _AST_FUNCTION.match(line)
        if not function:
            continue
        indent, name = len(function.group(1)), function.group(2)
        parent = next((p for p in reversed(lines[:index]) if len(p) - len(p.lstrip()) < indent), "")
        if parent.strip().startswith("TableExpression"):
            _check_table_function(name)
        else:
            _check_function(name)


async def _vet_tables(store: Store, statement: str) -> None:
    """Analyzer pass: every resolved table, whatever alias, CTE or IN form reached it."""
    for line in await _explain(store, "QUERY TREE", statement):
        node = line.lstrip()  # one node per line; string constants are escaped onto it
        if node.startswith("TABLE id:"):
            for name in _TREE_TABLE.findall(node):
                if name not in IMPLICIT_TABLES:
                    _check_table(name, store.database, qualified_only=False)
        elif node.startswith("TABLE_FUNCTION id:"):
            for name in _TREE_TABLE_FUNCTION.findall(node):
                _check_table_function(name)
        elif node.startswith("FUNCTION id:"):
            for name in _TREE_FUNCTION.findall(node):
                _check_function(name)


def _check_table(name: str, database: str, *, qualified_only: bool) -> None:
    name = name.replace("`", "")
    if "." not in name:
        if qualified_only:
            return
        raise UnsafeQuery(f"cannot tell which database table {name!r} belongs to")
    qualifier = name.split(".", 1)[0]
    if qualifier != database:
        raise UnsafeQuery(
            f"only tables of the {database!r} database can be read (the query reads {name})"
        )


def _check_table_function(name: str) -> None:
    if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
        raise UnsafeQuery(f"the table function {name}() is not allowed here")


def _check_function(name: str) -> None:
    lowered = name.lower()
    if lowered in DENIED_FUNCTIONS or lowered.startswith(DENIED_FUNCTION_PREFIXES):
        raise UnsafeQuery(f"the function {name}() is not allowed here")
