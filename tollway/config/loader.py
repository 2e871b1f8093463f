"""Load and validate tollway.yaml, with errors a person can act on.

A bad config must fail at load, before anything starts, and say where and why in the user's
terms: the file and line, the field path with the names the user gave
(`models[2] (gpt-4o).input_per_mtok`), what was expected, and what was found. Every problem of
a phase is reported at once (YAML syntax, then field validation, then cross-references and
prices), so one edit round fixes them all. Values of fields that could hold a secret (keys,
hashes, URLs, anything named like a secret) are never echoed: a pasted API key in the wrong
field must not end up in a terminal log.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tollway.config.schema import ConfigReferenceError, Issue, Loc, TollwayConfig

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")

__all__ = ["DEMO_CONFIG", "ConfigError", "ConfigIssue", "dump_config", "load_config"]

_SECRETISH = re.compile(r"key|secret|hash|token|password|url|auth", re.IGNORECASE)
"""Field names whose values are never echoed in an error (api_key_env holds a variable name,
but the classic mistake is pasting the key itself there)."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: where (`path` in the user's terms, `line` in the file) and what."""

    path: str
    message: str
    line: int | None = None


class ConfigError(ValueError):
    """A config file that cannot be used; `issues` lists every problem found."""

    def __init__(self, file: Path | str, issues: list[ConfigIssue]) -> None:
        self.file = str(file)
        self.issues = issues
        super().__init__(self.render())

    def render(self) -> str:
        """One line per issue: `file:line: path: message`."""
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        out = []
        for issue in self.issues:
            where = self.file if issue.line is None else f"{self.file}:{issue.line}"
            out.append(
                f"{where}: {issue.path}: {issue.message}"
                if issue.path
                else f"{where}: {issue.message}"
            )
        return out

    def __str__(self) -> str:
        return self.render()


def load_config(path: Path | str | None = None) -> TollwayConfig:
    """Read, parse and validate a config file; the built-in demo config when `path` is None.

    Raises `ConfigError` for every problem, never a bare OSError, YAMLError or ValidationError.
    """
    source = Path(path) if path is not None else DEMO_CONFIG
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [ConfigIssue("", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(
            source, [ConfigIssue("", "is a directory, expected a YAML file")]
        ) from None
    except PermissionError:
        raise ConfigError(source, [ConfigIssue("", "permission denied")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, source)


def parse_config(text: str, source: Path | str = "<string>") -> TollwayConfig:
    """Validate config text; `source` names it in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(source, [_yaml_issue(exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue("", f"YAML error: {exc}")]) from None
    issues = [ConfigIssue(_render(loc, {}), msg, line) for loc, msg, line in _duplicate_keys(root)]
    data = _construct(root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issues.append(
            ConfigIssue(
                "",
                f"the top level must be a mapping of sections (providers, models, "
                f"routes, ...), got {_yaml_type(data)}",
                1,
            )
        )
        raise ConfigError(source, issues)
    try:
        cfg = TollwayConfig.model_validate(data)
    except ValidationError as exc:
        for loc, message in _validation_issues(exc, data):
            issues.append(ConfigIssue(_render(loc, data), message, _line_of(root, loc)))
        raise ConfigError(source, issues) from None
    from tollway.price_checks import validate_prices  # imports the schema, not the loader

    for loc, message in validate_prices(cfg):
        issues.append(ConfigIssue(_render(loc, data), message, _line_of(root, loc)))
    if issues:
        raise ConfigError(source, issues)
    return cfg


def dump_config(cfg: TollwayConfig, *, defaults: bool = True) -> str:
    """The config as YAML (with every default filled in unless `defaults` is False).

    Loading the output gives an equal config; prices stay exact (Decimals are written as
    plain numbers, not floats).
    """
    data = cfg.model_dump(mode="python", exclude_defaults=not defaults)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# --- YAML -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(date, yaml.SafeDumper.represent_date)


def _yaml_issue(exc: yaml.MarkedYAMLError) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    parts = [p for p in (exc.context, exc.problem) if p]
    what = "; ".join(parts) or "invalid YAML"
    if mark is None:
        return ConfigIssue("", f"YAML syntax error: {what}")
    return ConfigIssue(
        "",
        f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {what}",
        mark.line + 1,
    )


def _construct(root: yaml.Node | None) -> Any:
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> list[tuple[Loc, str, int]]:
    """PyYAML keeps the last of two equal keys silently; a doubled `budgets:` would drop half
    the budgets, so it is an error here."""
    found: list[tuple[Loc, str, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                found.append(
                    (
                        (*loc, name),
                        "duplicate key (YAML keeps only the last one)",
                        key.start_mark.line + 1,
                    )
                )
            seen.add(name)
            found += _duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*loc, i))
    return found


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the deepest node along `loc` (the parent, for a missing field).

    A mapping entry is located by its key, which is where the user reads the field name.
    """
    if root is None:
        return None
    node: yaml.Node | None = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# --- pydantic errors in the user's terms ------------------------------------------------------


def _validation_issues(exc: ValidationError, data: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for err in exc.errors():
        context_error = (err.get("ctx") or {}).get("error")
        if isinstance(context_error, ConfigReferenceError):
            issues += [((*err["loc"], *loc), msg) for loc, msg in context_error.issues]
            continue
        loc = _clean_loc(err["loc"])
        issues.append((loc, _explain(err, loc)))
    return issues


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    """Drop pydantic's internal steps (validator and union member tags) from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not _INTERNAL.match(p))


_INTERNAL = re.compile(r"^(function-\w+\[.*\]|decimal|float|int|str|bool|date|list\[.*|dict\[.*)$")


def _explain(err: ErrorDetails, loc: Loc) -> str:
    """Pydantic's message plus the offending value, or a friendlier one for common mistakes."""
    kind = err["type"]
    message = err["msg"].removeprefix("Value error, ")
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        message = f"unknown field {field!r}"
        close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
        if close:
            message += f": did you mean {close[0]!r}?"
        elif known:
            message += f" (allowed: {', '.join(known)})"
        return message
    if kind == "missing":
        return f"required field {field!r} is missing"
    value = err.get("input")
    if _SECRETISH.search(field) or isinstance(value, dict | list):
        return message
    shown = _short(value)
    return message if shown in message else f"{message} (got {shown})"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(loc: Loc) -> list[str]:
    """The field names allowed at a location, found by walking the schema's annotations."""
    model: type[BaseModel] | None = TollwayConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _render(loc: Loc, data: Any) -> str:
    """`("models", 2, "input_per_mtok")` → `models[2] (gpt-4o).input_per_mtok`: list items are
    labelled with their `name` or `id` so the user finds them without counting."""
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            label = item.get("name", item.get("id")) if isinstance(item, dict) else None
            if isinstance(label, str | int) and not isinstance(label, bool):
                out += f" ({label})"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out
