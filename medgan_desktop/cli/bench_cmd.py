"""``medgan bench [NAME ...] [--quick] [--out DIR]``: run the benchmark suite.

Each script in ``benchmarks/`` exposes ``run(quick: bool) -> dict``; every figure
it reports is a ratio against a reference measured in the same run on the same
machine. The results are written as JSON and as a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
import traceback
from pathlib import Path
from typing import Any

from medgan_desktop import __version__
from medgan_desktop.cli import CliError
from medgan_desktop.core.config import install_root

SUITE = ("dicom", "viewer", "gui", "startup", "training", "translation", "synthesis_quality")


def benchmarks_dir() -> Path:
    return install_root() / "benchmarks"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bench", help="run benchmarks (ratios against references measured in the same run)"
    )
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(SUITE)})")
    p.add_argument("--quick", action="store_true", help="small sizes, for a fast check")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for results.json and results.md (default benchmarks/results)")
    p.set_defaults(func=_run)


def _load(name: str) -> Any:
    path = benchmarks_dir() / f"bench_{name}.py"
    if not path.is_file():
        raise CliError(f"no benchmark {name!r} ({path} is missing)")
    spec = importlib.util.spec_from_file_location(f"medgan_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _flatten(prefix: str, value: Any, rows: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, float):
        rows.append((prefix, f"{value:.4g}"))
    elif isinstance(value, int | str | bool) or value is None:
        rows.append((prefix, str(value)))
    elif isinstance(value, list) and len(value) <= 8:
        rows.append((prefix, ", ".join(str(v) for v in value)))


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# medgan benchmarks ({results['machine']['when']})",
        "",
        f"medgan {results['machine']['version']} on {results['machine']['platform']}, "
        f"{results['machine']['cpus']} CPUs, quick={results['machine']['quick']}.",
        "Ratios compare against a reference measured in the same run.",
        "",
    ]
    for name, res in results["benchmarks"].items():
        lines += [f"## {name}", "", "| figure | value |", "| --- | --- |"]
        rows: list[tuple[str, str]] = []
        _flatten("", res, rows)
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    import os

    names = args.names or list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        raise CliError(f"unknown benchmark(s) {unknown}; choose from {', '.join(SUITE)}")
    out = args.out or benchmarks_dir() / "results"
    results: dict[str, Any] = {
        "machine": {
            "version": __version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": bool(args.quick),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "benchmarks": {},
    }
    failed = 0
    for name in names:
        print(f"[bench] {name} …", flush=True)
        t0 = time.perf_counter()
        try:
            res = _load(name).run(quick=bool(args.quick))
        except CliError:
            raise
        except Exception as exc:  # one failing benchmark must not hide the others
            failed += 1
            res = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            print(f"[bench] {name} FAILED: {exc}", flush=True)
        res["seconds"] = round(time.perf_counter() - t0, 2)
        results["benchmarks"][name] = res
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    (out / "results.md").write_text(to_markdown(results), encoding="utf-8")
    print(f"[bench] wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if failed else 0
