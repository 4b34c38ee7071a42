"""``medgan models list|verify|import|card|export``: the model catalogue from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medgan_desktop.cli import CliError
from medgan_desktop.core.models.registry import ModelError, ModelRegistry


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("models", help="list, verify and import models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="list shipped and user models")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    vf = msub.add_parser("verify", help="check every model's weights against its sha256")
    vf.set_defaults(func=_verify)
    im = msub.add_parser(
        "import", help="import a run folder or a weights file as a user model",
        description="Copy a run folder, or a .safetensors weights file (with run.json beside it "
        "or embedded in its metadata, as training and 'medgan models export' write), into the "
        "user models folder and record its sha256 in the user manifest.",
    )
    im.add_argument("source", type=Path, help="run folder or .safetensors file")
    im.add_argument("--id", dest="model_id", help="model id (default: the folder or file name)")
    im.add_argument("--card", type=Path, help="Markdown model card to copy")
    im.add_argument("--replace", action="store_true", help="overwrite a user model with the same id")
    im.set_defaults(func=_import)
    cd = msub.add_parser("card", help="print a model's card")
    cd.add_argument("model_id")
    cd.set_defaults(func=_card)
    ex = msub.add_parser(
        "export",
        help="write a shippable copy of a run holding only its inference network",
        description="Copy a finished run folder's run.json (and held-out metrics) and only the "
        "network inference uses (no discriminators, no reverse generator), optionally as "
        "float16, so it can be imported or shipped small. The copy cannot be resumed.",
    )
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("out_dir", type=Path)
    ex.add_argument("--half", action="store_true", help="store floating-point weights as float16")
    ex.set_defaults(func=_export)


def _list(args: argparse.Namespace) -> int:
    try:
        entries = ModelRegistry().entries()
    except ModelError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps([{**e.raw, "shipped": e.shipped} for e in entries], indent=2))
    else:
        for e in entries:
            print(f"{e.id:32s} {e.task:12s} {e.method:12s} {'shipped' if e.shipped else 'user'}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    reg = ModelRegistry()
    bad = 0
    for e in reg.entries():
        try:
            reg.verify(e)
            print(f"ok      {e.id}")
        except ModelError as exc:
            bad += 1
            print(f"FAILED  {e.id}: {exc}")
    return 1 if bad else 0


def _import(args: argparse.Namespace) -> int:
    try:
        e = ModelRegistry().import_model(args.source, args.model_id, args.card, replace=args.replace)
    except ModelError as exc:
        raise CliError(str(exc)) from exc
    print(f"imported {e.id} into {e.folder}")
    return 0


def _card(args: argparse.Namespace) -> int:
    try:
        print(ModelRegistry().get(args.model_id).card_text())
    except ModelError as exc:
        raise CliError(str(exc)) from exc
    return 0


def _export(args: argparse.Namespace) -> int:
    from medgan_desktop.core.training.run import ModelLoadError, export_inference

    if args.out_dir.resolve() == args.run_dir.resolve():
        raise CliError("the export folder must differ from the run folder (the run is never modified)")
    try:
        dest = export_inference(args.run_dir, args.out_dir, half=args.half)
    except (ModelLoadError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"exported {dest} ({dest.stat().st_size / 2**20:.1f} MiB)")
    return 0
