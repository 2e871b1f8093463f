"""Answers of the analytics API in the format the caller asks for, and its error bodies.

JSON is the default. `Accept: text/csv` returns the endpoint's row list (e.g. `rows`, `points`)
as CSV; `Accept: application/vnd.apache.arrow.stream` returns it as an Arrow IPC stream, with
`*_usd` columns as decimal128(38, 9) so dataframes get exact money, and nested values (a budget's
scope) as JSON text in both tabular formats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response

ARROW_STREAM = "application/vnd.apache.arrow.stream"
_NANO = Decimal("1e-9")


def usd(value: Decimal | str | int | None) -> str:
    """Exact USD text without trailing zeros (as ClickHouse prints Decimals)."""
    if value is None:
        return "0"
    number = Decimal(value) if not isinstance(value, Decimal) else value
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = _flat(row.get(column))
            if value is None:
                value = ""
            elif isinstance(value, bool):
                value = "true" if value else "false"
            cells.append(value)
        writer.writerow(cells)
    return buffer.getvalue()


def _arrow(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    import pyarrow as pa

    arrays = []
    for column in columns:
        values = [_flat(row.get(column)) for row in rows]
        if column.endswith("_usd"):
            exact = [None if v is None else Decimal(v).quantize(_NANO) for v in values]
            arrays.append(pa.array(exact, type=pa.decimal128(38, 9)))
        elif all(v is None for v in values):
            arrays.append(pa.array(values, type=pa.string()))
        else:
            arrays.append(pa.array(values))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def render(
    request: Request, body: dict[str, Any], rows_key: str, columns: Sequence[str]
) -> Response:
    """`body` as JSON, or its `rows_key` list as CSV / Arrow with these `columns`."""
    accept = request.headers.get("accept", "").lower()
    rows: list[dict[str, Any]] = body.get(rows_key) or []
    if ARROW_STREAM in accept:
        return Response(content=_arrow(rows, columns), media_type=ARROW_STREAM)
    if "text/csv" in accept:
        return Response(content=_csv(rows, columns), media_type="text/csv; charset=utf-8")
    return JSONResponse(body)
