"""Importing an official list of 50,000 agencies: read, check, diff, merge and write.

Builds a registry of N fictitious agencies (50,000 by default) in a temporary
content tree and an official list of the same agencies as a government would
send it (its own column names, dd/mm/yyyy dates, its own status words), with
a few hundred of each kind of change: new, renamed, suspended, revoked,
expired, dropped. Then times what ``migrantline agencies import --apply``
does: ``importer.plan`` (read the current registry, read and check the list,
diff, merge), the report, and ``importer.write_registry`` (which checks the
result as the service will before renaming it into place).

The baseline, measured in the same run on the same rows: a bare ``csv``
parse of the list and an ``executemany`` insert of its rows into an
in-memory SQLite table — the least any import of this file could do.

    .venv/bin/python bench/agency_import.py                  # 50,000 rows
    .venv/bin/python bench/agency_import.py --rows 5000 --seed 7

The target is under 10 s for 50,000 rows. Exit status 1 when it is missed,
or when the diff does not count the changes made.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ussd_app.agencies import importer  # noqa: E402
from ussd_app.agencies.check import AGENCY_FILE, COLUMNS  # noqa: E402

TARGET_SECONDS = 10.0
SOURCE = "Bench registry"
OLD_DATE, NEW_DATE = date(2026, 6, 1), date(2026, 12, 1)
CHANGES = 300  # per kind
MAPPING = """\
columns: {licence: Licence No, name: Agency Name, country: Country, status: Status,
          expires: Valid Until}
statuses: {Active: licensed, Suspended: suspended, Cancelled: revoked}
date_format: "%d/%m/%Y"
"""
WORDS = ["Star", "Gateway", "Bridge", "Horizon", "Pioneer", "Unity", "Crown", "Lotus", "Peak",
         "Dream", "Valley", "River", "Summit", "Trust", "Path", "Global", "Link", "Avenir"]
KINDS = ["Manpower", "Overseas", "Recruitment", "Employment", "HR Services", "Placement"]
COUNTRIES = ["NP", "MA", "PH", "BD", "KE", "LK", "IN", "ID", "ET", "UG"]
WORD_STATUS = {"licensed": "Active", "suspended": "Suspended", "revoked": "Cancelled"}


def build(rows: int, rng: random.Random) -> tuple[list[list[str]], list[list[str]], dict[str, int]]:
    """The registry's rows and the official list's rows, and the changes made between."""
    registry: list[list[str]] = []
    for i in range(rows):
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(KINDS)} {i}"
        expires = NEW_DATE + timedelta(days=rng.randrange(30, 1500))
        registry.append([f"BR-{i:06d}", name, "", rng.choice(COUNTRIES), "licensed",
                         expires.isoformat(), SOURCE, OLD_DATE.isoformat()])
    listed: list[list[str]] = []
    made = dict.fromkeys(("new", "renamed", "suspended", "revoked", "expired", "unlisted"), 0)
    for i, (lic, name, _, country, status, expires, _, _) in enumerate(registry):
        kind = ("renamed", "suspended", "revoked", "expired", "unlisted", "same")[
            min(i // CHANGES, 5)]
        if kind == "unlisted":
            made[kind] += 1
            continue
        if kind == "renamed":
            name = "New Name " + name
        elif kind in ("suspended", "revoked"):
            status = kind
        elif kind == "expired":
            expires = (NEW_DATE - timedelta(days=10)).isoformat()
        if kind != "same":
            made[kind] += 1
        day = date.fromisoformat(expires)
        listed.append([lic, name, country, WORD_STATUS[status], day.strftime("%d/%m/%Y")])
    for j in range(CHANGES):
        listed.append([f"BR-N{j:05d}", f"Brand New Manpower {j}", "NP", "Active", "01/01/2030"])
        made["new"] += 1
    return registry, listed, made


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def baseline(data: bytes) -> float:
    """A bare csv parse and SQLite insert of the list's rows."""
    start = time.perf_counter()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1:]
    con = sqlite3.connect(":memory:")
    con.execute("create table a (licence text primary key, name text, country text, "
                "status text, expires text)")
    con.executemany("insert into a values (?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    registry, listed, made = build(args.rows, random.Random(args.seed))
    work = Path(tempfile.mkdtemp(prefix="agency-import-bench-"))
    try:
        content = work / "content"
        content.mkdir()
        (content / AGENCY_FILE).write_bytes(csv_bytes(list(COLUMNS), registry))
        data = csv_bytes(["Licence No", "Agency Name", "Country", "Status", "Valid Until"],
                         listed)
        (work / "map.yaml").write_text(MAPPING, encoding="utf-8")
        config, problems = importer.load_config(work / "map.yaml")
        assert config is not None, problems
        print(f"{len(registry):,} agencies in the registry, {len(listed):,} rows in the list",
              flush=True)
        base = baseline(data)
        start = time.perf_counter()
        result = importer.plan(content, work / "list.csv", data, config, SOURCE, NEW_DATE)
        lines = importer.report(result.changes)
        planned = time.perf_counter() - start
        failed = importer.write_registry(content, result.result)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counted = {k: sum(c.kind == k for c in result.changes) for k in made}
    print(f"baseline (csv parse + sqlite insert): {base:6.2f} s")
    print(f"import, diff and report (dry run):    {planned:6.2f} s  ({planned / base:.1f}x)")
    print(f"import with --apply (checked write):  {total:6.2f} s  ({total / base:.1f}x)"
          f"   target < {TARGET_SECONDS:.0f} s")
    print("changes found: " + ", ".join(f"{k} {v}" for k, v in counted.items()))
    ok = True
    if not result.ok or failed:
        print("FAILED: the import reported errors:", *(result.problems + failed)[:5], sep="\n")
        ok = False
    if counted != made:
        print(f"FAILED: the diff counted {counted}, the bench made {made}")
        ok = False
    if total > TARGET_SECONDS:
        print(f"FAILED: over the {TARGET_SECONDS:.0f} s target")
        ok = False
    del lines
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
