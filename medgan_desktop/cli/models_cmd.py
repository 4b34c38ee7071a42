"""``medgan models list|verify|import|card|export``: the model catalogue from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from medgan_desktop.core.jobs.models import entries

    found = entries()
    if args.json:
        print(json.dumps([{**e.raw, "shipped": e.shipped} for e in found], indent=2))
    else:
        for e in found:
            print(f"{e.id:32s} {e.task:12s} {e.method:12s} {e.version:8s} "
                  f"{'shipped' if e.shipped else 'user'}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.models import run_verify

    lines = run_verify()
    for line in lines:
        print(f"ok      {line.model}" if line.ok else f"FAILED  {line.model}: {line.reason}")
    return 0 if all(line.ok for line in lines) else 1


def _import(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.models import ImportSpec, run_import

    e = run_import(ImportSpec(args.source, args.model_id, args.card, replace=args.replace))
    print(f"imported {e.id} into {e.folder}")
    return 0


def _card(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.models import model_card

    print(model_card(args.model_id))
    return 0


def _export(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.models import run_export

    dest = run_export(args.run_dir, args.out_dir, half=args.half)
    print(f"exported {dest} ({dest.stat().st_size / 2**20:.1f} MiB)")
    return 0
