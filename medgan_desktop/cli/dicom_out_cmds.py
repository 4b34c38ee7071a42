"""``medgan anonymize``, ``medgan send`` and ``medgan echo``: DICOM leaving the workstation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medgan_desktop.cli import CliError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "anonymize",
        help="de-identify a folder of DICOM files (PS3.15 Basic Profile)",
        description="De-identify every DICOM file under IN_DIR into OUT_DIR by the DICOM "
        "PS3.15 Annex E Basic Application Level Confidentiality Profile. OUT_DIR is written "
        "all-or-nothing and must be outside IN_DIR.",
    )
    a.add_argument("in_dir", type=Path, metavar="IN_DIR")
    a.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    a.add_argument("--pseudonym", metavar="NAME", help="PatientName in the export")
    a.add_argument("--patient-id", metavar="ID", help="PatientID in the export")
    a.add_argument("--retain-dates", action="store_true",
                   help="keep longitudinal temporal information, shifted by one offset per "
                   "patient (--date-offset 0 keeps the real dates)")
    a.add_argument("--date-offset", type=int, metavar="DAYS",
                   help="the date shift for --retain-dates (random per patient by default)")
    a.add_argument("--retain-patient-chars", action="store_true",
                   help="keep age, sex, size, weight and similar characteristics")
    a.add_argument("--retain-device", action="store_true",
                   help="keep device identity (serial numbers, station names)")
    a.add_argument("--retain-safe-private", action="store_true",
                   help="keep private attributes on the safe list (diffusion parameters)")
    a.add_argument("--clean-descriptors", action="store_true",
                   help="keep descriptions with identifying text removed")
    a.add_argument("--accept-burned-in", action="store_true",
                   help="export images that may show patient details in their pixels "
                   "(ultrasound, screen captures); check them yourself first")
    a.add_argument("--report", type=Path, metavar="FILE",
                   help="write the per-attribute report (.json or .csv)")
    a.set_defaults(func=_anonymize)

    for name, helptext in (("send", "C-STORE DICOM files to a PACS"),
                           ("echo", "C-ECHO a PACS to test the connection")):
        s = sub.add_parser(name, help=helptext)
        if name == "send":
            s.add_argument("dir", type=Path, metavar="DIR", help="folder of DICOM files to send")
            s.add_argument("--retries", type=int, default=2)
        s.add_argument("--host", required=True)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--aet", default="MEDGAN", help="our (calling) AE title")
        s.add_argument("--called-aet", required=True, help="the PACS's AE title")
        s.add_argument("--timeout", type=float, default=10.0, help="seconds per network wait")
        s.set_defaults(func=_send if name == "send" else _echo)


def _anonymize(args: argparse.Namespace) -> int:
    from medgan_desktop.core.dicom.anonymize import AnonymizeOptions
    from medgan_desktop.core.jobs.export import ExportSpec, run_export

    if args.report is not None:
        rep = args.report.expanduser().resolve()
        src = args.in_dir.expanduser().resolve()
        if rep.is_relative_to(src):
            raise CliError("the report must not be written into the source folder")
        if rep.is_relative_to(args.out_dir.expanduser().resolve()):
            raise CliError("the report names the source files, so it must not be written "
                           "into the anonymised output folder")
    opts = AnonymizeOptions(pseudonym_name=args.pseudonym, pseudonym_id=args.patient_id,
                            retain_longitudinal=args.retain_dates, retain_patient_chars=args.retain_patient_chars,
                            retain_device=args.retain_device, retain_safe_private=args.retain_safe_private,
                            clean_descriptors=args.clean_descriptors, accept_burned_in=args.accept_burned_in,
                            date_offset_days=args.date_offset)
    result = run_export(ExportSpec(out_dir=args.out_dir, options=opts, folder=args.in_dir))
    report = result.report
    assert report is not None
    if args.report is not None:
        try:
            report.save(args.report)
        except (OSError, ValueError) as exc:
            raise CliError(f"the export is in {report.out_dir}, but the report could not be "
                           f"written: {exc}") from exc
    for line in report.problem_lines(20):  # one sentence per file not exported
        print(line, file=sys.stderr)
    print(report.summary_text())
    print(f"output: {report.out_dir}")
    return 0 if report.complete else 1


def _node(args: argparse.Namespace) -> object:
    from medgan_desktop.core.dicom.pacs import DicomNode

    try:
        return DicomNode(args.called_aet, args.host, args.port, calling_ae=args.aet,
                         timeout=args.timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _echo(args: argparse.Namespace) -> int:
    from medgan_desktop.core.dicom.pacs import echo_message

    ok, msg = echo_message(_node(args))  # type: ignore[arg-type]
    print(msg, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _send(args: argparse.Namespace) -> int:
    from medgan_desktop.core.jobs.export import run_send

    report = run_send(args.dir, _node(args), retries=args.retries)  # type: ignore[arg-type]
    for f in report.files:
        if f.status != "ok":
            print(f"{f.status}: {f.path}: {f.message}", file=sys.stderr)
    print(report.summary())
    return 0 if report.ok else 1
