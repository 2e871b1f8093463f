"""What `proxy_overhead` prints: a table per tollway worker count against the direct calls,
the pass-through proxy beside tollway, the router issue's targets met or missed, and the check
that every call's event reached Kafka once."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.load_generators import SLOW_MS, Cell, Result


@dataclass
class Report:
    generator: str
    direct: dict[Cell, Result] = field(default_factory=dict)
    proxied: dict[int, dict[Cell, Result]] = field(default_factory=dict)  # by worker count
    passthrough: dict[Cell, Result] = field(default_factory=dict)
    passthrough_workers: int = 0
    events: tuple[int, int] | None = None  # records on the calls topic, distinct event ids
    proxied_calls: int = 0


def report_lines(report: Report, cells: list[Cell]) -> list[str]:
    """The tables, the targets' verdicts and the events check, as printed."""
    lines = [
        "proxy overhead: the same calls directly to a fast upstream and through "
        f"`tollway serve --role proxy` (events to Kafka); load generator: {report.generator}",
    ]
    if report.generator != "wrk":
        lines.append(
            "  note: wrk is not installed (apt-get install wrk / brew install wrk); the "
            "stand-in generator is slower, so these figures understate tollway"
        )
    for workers, results in report.proxied.items():
        lines.append(f"  tollway with {workers} worker process{'es' if workers > 1 else ''}:")
        lines.append(
            f"  {'upstream':>8} {'stream':>6} {'clients':>10} | {'direct/s':>8} {'p50':>7} {'p99':>7}"
            f" | {'tollway/s':>9} {'p50':>7} {'p99':>7} | {'ratio':>5} {'+p50':>7} {'+p99':>7}"
            f" | {'fail':>4} {'cpu/call':>8} {'kafka':>5}"
        )
        for cell in cells:
            d, t = report.direct[cell], results[cell]
            cpu = f"{t.cpu_us_per_call:6.0f}µs" if t.cpu_us_per_call is not None else "       -"
            kafka = f"{t.published_per_call:4.0%}" if t.published_per_call is not None else "-"
            lines.append(
                f"  {cell.upstream_ms:>6}ms {'yes' if cell.stream else 'no':>6} "
                f"{cell.label:>10} | {d.rps:8.0f} {d.p50_ms:7.2f} {d.p99_ms:7.2f}"
                f" | {t.rps:9.0f} {t.p50_ms:7.2f} {t.p99_ms:7.2f}"
                f" | {t.rps / d.rps if d.rps else 0:4.2f}x {t.p50_ms - d.p50_ms:7.2f}"
                f" {t.p99_ms - d.p99_ms:7.2f} | {t.failures + d.failures:>4} {cpu} {kafka:>5}"
            )
    lines += _passthrough_lines(report, cells)
    lines += _targets(report)
    if report.events is not None:
        records, distinct = report.events
        verdict = "each once" if records == distinct else "DUPLICATES"
        lines.append(
            f"  events: {records} on the calls topic, {distinct} distinct event ids ({verdict}); "
            f"{report.proxied_calls} calls answered to the load generator (the rest are warm-up "
            "calls and calls still in flight when a run ended, which are billed too)"
        )
    lines.append(
        "  (latencies in ms; +p50/+p99: tollway minus direct; fail: both sides; wrk corrects "
        "its percentiles for coordinated omission, so at 1 client one stall of 100 ms among "
        "5,000 calls makes the p99 tens of ms; kafka: events Kafka acknowledged during the run "
        "per call answered — below 100 % by the calls of the run's last moments, far below "
        "when the proxy's publisher falls behind and spools to disk)"
    )
    return lines


def _passthrough_lines(report: Report, cells: list[Cell]) -> list[str]:
    """The do-nothing proxy beside tollway with as many workers, and what the gateway adds
    over it."""
    mine = report.proxied.get(report.passthrough_workers, {})
    if not report.passthrough or not mine:
        return []
    count = report.passthrough_workers
    lines = [
        f"  pass-through proxy (benchmarks/passthrough.py: uvicorn and tollway's upstream client"
        f" relaying each call, nothing else), {count} worker process{'es' if count > 1 else ''}, against tollway's:",
        f"  {'upstream':>8} {'stream':>6} {'clients':>10} | {'pass/s':>8} {'p50':>7} {'p99':>7}"
        f" | {'tollway/s':>9} {'p50':>7} {'p99':>7} | {'+p50':>7} {'+p99':>7}",
    ]
    for cell in cells:
        p, t = report.passthrough[cell], mine[cell]
        lines.append(
            f"  {cell.upstream_ms:>6}ms {'yes' if cell.stream else 'no':>6} "
            f"{cell.label:>10} | {p.rps:8.0f} {p.p50_ms:7.2f} {p.p99_ms:7.2f}"
            f" | {t.rps:9.0f} {t.p50_ms:7.2f} {t.p99_ms:7.2f}"
            f" | {t.p50_ms - p.p50_ms:7.2f} {t.p99_ms - p.p99_ms:7.2f}"
        )
    return lines


def _targets(report: Report) -> list[str]:
    """The router issue's targets, checked for each worker count."""
    lines = ["  targets (router issue, 2-core machine):"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def workers(count: int) -> str:
        return f"{count} worker{'s' if count > 1 else ''}"

    for count, results in report.proxied.items():
        cell = Cell(0, False, 64)
        if cell in results:
            t = results[cell]
            lines.append(
                f"    >= 3,000 calls/s at concurrency 64, 0 ms upstream, {workers(count)}: "
                f"{t.rps:,.0f} — {verdict(t.rps >= 3000)}"
            )
    for count, results in report.proxied.items():
        cell = Cell(0, False, 1)
        if cell in results:
            t, d = results[cell], report.direct[cell]
            added50, added99 = t.p50_ms - d.p50_ms, t.p99_ms - d.p99_ms
            lines.append(
                f"    added latency at concurrency 1, {workers(count)}: p50 {added50:.2f} ms "
                f"(<= 1) — {verdict(added50 <= 1)}; p99 {added99:.2f} ms (<= 5) — "
                f"{verdict(added99 <= 5)}"
            )
    for staggered in (False, True):
        for stream in (False, True):
            cell = Cell(SLOW_MS, stream, 512, staggered)
            for w, results in report.proxied.items():
                if cell not in results:
                    continue
                t = results[cell]
                ok = t.failures == 0 and t.p99_ms <= SLOW_MS + 100
                floor = report.passthrough.get(cell)
                beside = f" (pass-through proxy: {floor.p99_ms:.0f} ms)" if floor else ""
                start = "started spread" if staggered else "started together"
                lines.append(
                    f"    {SLOW_MS} ms upstream, 512 clients {start}"
                    f"{', streamed' if stream else ''}, {workers(w)}: {t.failures} failures, "
                    f"p99 {t.p99_ms:.0f} ms (<= {SLOW_MS + 100}) — {verdict(ok)}{beside}"
                )
    return lines
