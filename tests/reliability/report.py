"""Print the reliability figures from a results directory; the program behind ``scripts/reliability``.

``report.py --print DIR [--full] [--write-docs]`` renders ``DIR/figures.jsonl`` as the generated
blocks of docs/reliability.md and README.md (support.figures_docs), and with ``--write-docs``
puts them into those files. ``report.py --targets`` prints the pytest targets that write figures,
one pytest invocation per line (a directory's conftest.py clashes with another's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the support package, as for pytest

from support.figures import load_rows  # noqa: E402
from support.figures_check import figure_files  # noqa: E402
from support.figures_docs import ROOT, printed, write_docs  # noqa: E402


def targets() -> list[str]:
    """The figure tests, one line of paths per test directory."""
    by_directory: dict[Path, list[str]] = {}
    for path in sorted(figure_files()):
        by_directory.setdefault(path.parent, []).append(str(path.relative_to(ROOT)))
    return [" ".join(paths) for _, paths in sorted(by_directory.items())]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", dest="results", type=Path, help="the results directory to render")
    parser.add_argument("--full", action="store_true", help="the rows are of the long forms (RELIABILITY_FULL=1)")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the docs' generated blocks")
    parser.add_argument("--targets", action="store_true", help="print the pytest targets and exit")
    args = parser.parse_args(argv)
    if args.targets:
        print("\n".join(targets()))
        return 0
    if args.results is None:
        parser.error("--print DIR or --targets")
    rows = load_rows(args.results / "figures.jsonl")
    if not rows:
        print(f"no figures in {args.results / 'figures.jsonl'}", file=sys.stderr)
        return 1
    forms = {bool(row["full"]) for row in rows if "full" in row}  # the soak's row says which form it ran
    if forms and forms != {args.full}:
        form = "full" if forms == {True} else "CI"
        print(f"the rows are of the {form} form: --full goes with a full run only", file=sys.stderr)
        return 1
    print(printed(rows, args.full))
    if args.write_docs:
        for path in write_docs(rows, args.full):
            print(f"rewrote the figures of {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
