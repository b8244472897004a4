"""Results as data: one record per benchmark or experiment run, and the results pages' tables rendered from them.

A record is one line of `docs/results/<page>/records.jsonl`:

    {"page": "generate", "experiment": "converge", "label": "every step", "command": "python bench/...",
     "commit": "6f664fc...", "host": "vm-1", "cpus": 2, "load": {"start": [..], "end": [..]},
     "config": {...}, "metrics": {...}, "started": "2026-12-07T15:00:00Z", "ended": "...",
     "imported_from": null, "note": null}

`experiment` says what was measured (a page holds several); `config` what it was measured on, `metrics` what
came out. A figure taken from an older page or file, not re-measured, is a record with `imported_from` set to
the commit it was taken from and the fields it never had left null.

    with records.run("generate", "rate", {"size": 128}) as rec:     # a bench: times, load, commit, host
        rec["metrics"]["img_per_s"] = 91.0
    records.render_page("docs/results/generate.md")                  # or: python -m landmix.records render PAGE

A page's table sits between markers whose opening comment holds its spec as JSON:

    <!-- table:steps {"where": {"experiment": "short"}, "sort": ["config.order"],
                      "columns": [["look", "{label}"], ["NME", "{metrics.test_nme:.2%}"]]} -->
    ...rendered rows...
    <!-- /table:steps -->

`where` maps dotted paths to a value or a list of allowed values (a list of such maps: any of them). A column
is a header and a template (or a list of them: the first whose fields the record has); `{field.path:spec}` takes a dotted path into the record (a list index is a number)
and a format spec, where a spec ending in `%` prints the value x100 followed by " %" and one ending in `p` prints
it x100 alone, and `min` prints seconds as "M min S s"; true and false print as yes and no. A cell whose template names a field the record lacks is left
empty. `"mean": "LABEL"` adds a row of the means of the fractional fields every selected record has. Only what lies between the markers is
rewritten; the rest of the page is the author's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
RECORDS_FILE = "records.jsonl"
FIELDS = (
    "page",
    "experiment",
    "label",
    "command",
    "commit",
    "host",
    "cpus",
    "load",
    "config",
    "metrics",
    "started",
    "ended",
    "imported_from",
    "note",
)
_OPEN = re.compile(r"<!-- table:(?P<name>[\w-]+)(?P<spec>.*?)-->\n", re.S)
_FIELD = re.compile(r"\{(?P<path>[\w.@]+)(?::(?P<spec>[^}]*))?\}")


def records_path(page: str, root: Path | None = None) -> Path:
    """Where a page's records live: <root>/<page>/records.jsonl (root: docs/results of this repository)."""
    return Path(root or RESULTS) / page / RECORDS_FILE


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit (`git rev-parse HEAD`), or None outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_record(
    page: str,
    experiment: str,
    config: dict | None = None,
    metrics: dict | None = None,
    *,
    label: str | None = None,
    command: str | None = None,
    note: str | None = None,
) -> dict:
    """A record of a run on this machine now: command line, commit, host, load average, start time."""
    return {
        "page": page,
        "experiment": experiment,
        "label": label,
        "command": command or shlex.join(["python", *sys.argv]),
        "commit": git_commit(),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "load": {"start": list(os.getloadavg()), "end": None},
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "started": _now(),
        "ended": None,
        "imported_from": None,
        "note": note,
    }


def write_record(record: dict, root: Path | None = None) -> Path:
    """Append `record` to its page's records (closing its end time and load if still open); returns the file."""
    rec = {k: record.get(k) for k in FIELDS} | {k: v for k, v in record.items() if k not in FIELDS}
    if not rec["page"] or not rec["experiment"]:
        raise ValueError(
            f"a record needs a page and an experiment, got page={rec['page']!r} "
            f"experiment={rec['experiment']!r}"
        )
    if rec["imported_from"] is None:
        rec["ended"] = rec["ended"] or _now()
        if isinstance(rec["load"], dict) and rec["load"].get("end") is None:
            rec["load"] = rec["load"] | {"end": list(os.getloadavg())}
    path = records_path(rec["page"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(rec, sort_keys=False) + "\n")
    return path


@contextlib.contextmanager
def run(
    page: str,
    experiment: str,
    config: dict | None = None,
    *,
    label: str | None = None,
    root: Path | None = None,
    note: str | None = None,
) -> Iterator[dict]:
    """Time a run and write its record when the block ends without an error; fill rec["metrics"] inside."""
    rec = new_record(page, experiment, config, label=label, note=note)
    yield rec
    write_record(rec, root)


def read_records(page: str, root: Path | None = None) -> list[dict]:
    """Every record of a page, in the order written (an empty list when it has none)."""
    path = records_path(page, root)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not a JSON record ({e}); fix or remove that line") from e
    return out


def field(record: dict, path: str):
    """The value at a dotted path (`metrics.test_nme`, `metrics.ci.0`), or None where any step is missing."""
    value = record
    for key in path.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
        if value is None:
            return None
    return value


def _format(value, spec: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec == "min" and isinstance(value, (int, float)):  # seconds as "M min S s" ("M min" when S is 0)
        m, s = divmod(round(value), 60)
        return f"{m} min {s} s" if s else f"{m} min"
    if spec.endswith(("%", "p")) and isinstance(value, (int, float)):
        return format(value * 100, spec[:-1] + "f" if spec[:-1] else "g") + (
            " %" if spec.endswith("%") else ""
        )
    return format(value, spec) if spec else str(value)


def cell(record: dict, template: str | list[str]) -> str:
    """A template filled from a record; empty when the record lacks any field it names. A list of templates
    is filled by the first whose fields the record has."""
    if isinstance(template, list):
        return next((c for c in (cell(record, t) for t in template) if c), "")
    values = {m.group(0): field(record, m.group("path")) for m in _FIELD.finditer(template)}
    if any(v is None for v in values.values()):
        return ""
    return _FIELD.sub(lambda m: _format(values[m.group(0)], m.group("spec") or ""), template).replace(
        "|", "\\|"
    )


def _matches(record: dict, where: dict | list[dict]) -> bool:
    if isinstance(where, list):  # any of several selections
        return any(_matches(record, w) for w in where)
    for path, want in where.items():
        got = field(record, path)
        if isinstance(want, list) and got not in want or not isinstance(want, list) and got != want:
            return False
    return True


def _mean_record(rows: list[dict]) -> dict:
    """The means of the fractional leaves every row has (as a record with the same paths; counts such as
    seeds and epochs are integers and are not averaged)."""

    def leaves(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out |= leaves(v, f"{prefix}{k}.")
            elif isinstance(v, float):
                out[prefix + k] = v
        return out

    flat = [leaves(r) for r in rows]
    common = set.intersection(*(set(f) for f in flat)) if flat else set()
    mean: dict = {}
    for path in common:
        *parents, last = path.split(".")
        node = mean
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = sum(f[path] for f in flat) / len(flat)
    return mean


def render_table(records: list[dict], spec: dict) -> str:
    """A markdown table of the records `spec["where"]` selects (all when absent), one row each, in the order of
    `spec["sort"]` (dotted paths; else as written), the columns `spec["columns"]` ([header, template] pairs)."""
    columns = spec.get("columns")
    if not columns:
        raise ValueError(f"a table spec needs columns ([header, template] pairs), got {spec!r}")
    rows = [r for r in records if _matches(r, spec.get("where", {}))]
    for path in reversed(spec.get("sort", [])):
        rows.sort(key=lambda r: (field(r, path) is None, field(r, path) if field(r, path) is not None else 0))
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, t) for _, t in columns) + " |" for r in rows]
    if spec.get("mean") and rows:
        mean = _mean_record(rows) | {"label": spec["mean"]}
        lines.append("| " + " | ".join([spec["mean"]] + [cell(mean, t) for _, t in columns[1:]]) + " |")
    return "\n".join(lines) + "\n"


def render_text(text: str, records: list[dict]) -> str:
    """`text` with every marked table rendered anew from `records`; everything outside the markers unchanged."""
    out, pos = [], 0
    for m in _OPEN.finditer(text):
        if m.start() < pos:
            continue
        name = m.group("name")
        close = f"<!-- /table:{name} -->"
        end = text.find(close, m.end())
        if end < 0:
            raise ValueError(f"table {name!r} has no closing marker {close!r}")
        try:
            spec = json.loads(m.group("spec").strip() or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"table {name!r}: its spec is not JSON ({e})") from e
        out += [text[pos : m.end()], render_table(records, spec)]
        pos = end
    return "".join(out) + text[pos:]


def render_page(page: Path | str, root: Path | None = None) -> bool:
    """Re-render a page's tables from its records (`docs/results/x.md` reads `x/records.jsonl` beside it, or
    under `root`); returns whether the page changed."""
    page = Path(page)
    records = read_records(page.stem, root or page.parent)
    text = page.read_text()
    new = render_text(text, records)
    if new != text:
        page.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m landmix.records", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="re-render the marked tables of results pages from their records")
    r.add_argument(
        "pages", nargs="+", type=Path, help="e.g. docs/results/generate.md (reads generate/records.jsonl)"
    )
    r.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is not up to date")
    args = p.parse_args(argv)
    stale = []
    for page in args.pages:
        try:
            if args.check:
                text = page.read_text()
                if render_text(text, read_records(page.stem, page.parent)) != text:
                    stale.append(page)
            elif render_page(page):
                print(f"{page}: tables re-rendered")
        except (OSError, ValueError) as e:
            print(f"{page}: {e}", file=sys.stderr)
            return 2
    for page in stale:
        print(f"{page}: tables differ from the records; run python -m landmix.records render {page}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
