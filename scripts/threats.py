#!/usr/bin/env python3
"""The threat report: every row of shared/THREATS.md -> the tests named after it -> their result.

Each THREATS.md row `Tnn` is answered by one or more tests whose name starts with `tnn_`
(e.g. `t07_cross_family_read`), anywhere in the workspace. This script runs the workspace's
tests (or reads the output of a run), and prints, per row, the tests and whether they passed.

    scripts/threats.py                      # runs `cargo test --workspace`, prints the table
    scripts/threats.py --json               # the same as JSON
    scripts/threats.py --from-log test.log  # reads a saved `cargo test` output instead
    scripts/threats.py --strict             # also exit 1 if a threat test is ignored

Rows arrive in THREATS.md before their tests (the issue that names a row makes it pass): a row
with no test yet is listed as *open*, with the count, and fails nothing. The report fails
(exit 1) on a failing named test; with --strict, also on an ignored one (an ignored threat test
is a row that silently stopped being checked).
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = re.compile(r"^\|\s*(T\d{2})\s*\|\s*(.+?)\s*\|\s*(.+?)\s*\|\s*$")
RESULT = re.compile(r"^test (?:.*::)?(t\d{2}_\w+) \.\.\. (ok|FAILED|ignored)")


def threats(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = ROW.match(line.strip())
            if m:
                rows.append({"id": m.group(1), "attack": m.group(2), "must_hold": m.group(3)})
    return rows


def test_output(args):
    if args.from_log:
        with open(args.from_log, encoding="utf-8", errors="replace") as f:
            return f.read()
    run = subprocess.run(
        ["cargo", "test", "--workspace", "--no-fail-fast"],
        cwd=ROOT, capture_output=True, text=True,
    )
    return run.stdout + run.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threats", default=os.path.join(ROOT, "..", "shared", "THREATS.md"))
    p.add_argument("--from-log")
    p.add_argument("--json", action="store_true")
    p.add_argument("--strict", action="store_true")
    args = p.parse_args()

    rows = threats(args.threats)
    if not rows:
        sys.exit(f"no threat rows found in {args.threats}")
    results = {}
    for line in test_output(args).splitlines():
        m = RESULT.match(line.strip())
        if m:
            results.setdefault(m.group(1), []).append(m.group(2))
    report = []
    for r in rows:
        prefix = r["id"].lower() + "_"
        tests = [
            {"test": name, "result": "failed" if "FAILED" in res else ("ignored" if "ignored" in res else "passed")}
            for name, res in sorted(results.items()) if name.startswith(prefix)
        ]
        status = "open" if not tests else (
            "failed" if any(t["result"] == "failed" for t in tests) else
            "passed" if all(t["result"] == "passed" for t in tests) else "ignored")
        report.append({**r, "status": status, "tests": tests})

    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for r in report:
            names = ", ".join(t["test"] for t in r["tests"]) or "—"
            print(f"{r['id']}  {r['status']:<8} {names}")
        counts = {s: sum(1 for r in report if r["status"] == s) for s in ("passed", "failed", "open", "ignored")}
        opened = [r["id"] for r in report if r["status"] == "open"]
        print(f"{len(report)} threats: {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['ignored']} ignored, {counts['open']} open (no test yet"
              + (": " + " ".join(opened) if opened else "") + ")")
    failed = any(r["status"] == "failed" for r in report)
    ignored = any(r["status"] == "ignored" for r in report)
    sys.exit(1 if failed or (args.strict and ignored) else 0)


if __name__ == "__main__":
    main()
