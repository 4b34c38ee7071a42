"""The account of an anonymisation job: per file, per attribute, and its overall status.

The report names the source files (their paths can hold identity), so it is kept out of
the export: :meth:`AnonymizeReport.save` refuses a path inside the output folder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medgan_desktop.core.types import JsonObject

__all__ = ["ActionRecord", "AnonymizeReport", "FileResult"]


@dataclass(frozen=True)
class ActionRecord:
    """One action applied to one attribute.

    Args:
        path: where the attribute sits, e.g. ``(0008,1140)[0]/(0008,1155)``.
        tag: ``(gggg,eeee)``.
        name: the attribute keyword (or "private"/"overlay"/"unknown"/...).
        action: the single action applied: D, Z, X, K, C or U.
        rule: what decided it: the Table E.1-1 code (e.g. ``X/Z``), ``product:<code>``
            (a row of the product's supplement to the table), ``private``,
            ``safe-private`` (kept: listed in Table E.3.10-1), ``safe-private-mismatch``
            (listed, but its VR/VM is not the table's: removed), ``comment``, ``uid``,
            ``not-in-table`` (text, name or date the table does not list), ``allow-list``
            (kept and cleaned), ``unknown`` (no dictionary knows the tag), ``un`` (still
            UN after decoding as the dictionary VR), ``vr-mismatch``, ``not-in-instance``
            (command, file meta or directory element), ``pseudonym`` or ``marker``.
    """

    path: str
    tag: str
    name: str
    action: str
    rule: str


@dataclass(frozen=True)
class FileResult:
    """What happened to one source file (paths relative to the source/output folders).

    Args:
        source: the source file as the report names it.
        output: the written file, relative to the output folder (None when not written).
        status: ``written``; ``skipped`` (it could not be exported: not DICOM, unreadable,
            corrupt, or not a complete instance; a problem the user should look at); or
            ``ignored`` (a DICOMDIR: a media index, never copied, as it names source files).
        reason: one line saying why it was not written.
    """

    source: str
    output: str | None
    status: str
    reason: str


@dataclass
class AnonymizeReport:
    """The per-file and per-attribute account of an anonymisation job."""

    edition: str
    options: JsonObject
    files: list[FileResult] = field(default_factory=list)
    actions: list[tuple[str, ActionRecord]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    out_dir: str = ""

    @property
    def written(self) -> int:
        return sum(1 for f in self.files if f.status == "written")

    @property
    def skipped(self) -> int:
        return sum(1 for f in self.files if f.status == "skipped")

    @property
    def problems(self) -> list[FileResult]:
        """The source files that could not be exported (status ``skipped``)."""
        return [f for f in self.files if f.status == "skipped"]

    @property
    def complete(self) -> bool:
        """Every source file was written (DICOMDIRs aside) and at least one was."""
        return self.written > 0 and not self.problems

    @property
    def status(self) -> str:
        """``written``, ``written with problems`` (some files skipped) or ``nothing written``."""
        if not self.written:
            return "nothing written"
        return "written with problems" if self.problems else "written"

    def problem_lines(self, limit: int = 20) -> list[str]:
        """One sentence per skipped file (at most ``limit``, then how many more)."""
        probs = self.problems
        lines = [f"{f.source} was not exported: {f.reason}" for f in probs[:limit]]
        if len(probs) > limit:
            lines.append(f"... and {len(probs) - limit} more file(s) were not exported.")
        return lines

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per attribute keyword and action, e.g. ``{"PatientName": {"D": 3}}``."""
        out: dict[str, dict[str, int]] = {}
        for _, r in self.actions:
            per = out.setdefault(r.name, {})
            per[r.action] = per.get(r.action, 0) + 1
        return out

    def summary_text(self) -> str:
        """One line: the status, the file counts and the attribute actions."""
        acts: dict[str, int] = {}
        for _, r in self.actions:
            acts[r.action] = acts.get(r.action, 0) + 1
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(acts.items()))
        status = self.status
        head = f"{status[0].upper()}{status[1:]}: " if status != "written" else ""
        return (f"{head}{self.written} file(s) written, {self.skipped} skipped; "
                f"attribute actions {parts or 'none'} (PS3.15 {self.edition})")

    def to_dict(self) -> JsonObject:
        return {
            "edition": self.edition,
            "options": self.options,
            "out_dir": self.out_dir,
            "status": self.status,
            "complete": self.complete,
            "files": [asdict(f) for f in self.files],
            "refused": self.refused,
            "summary": self.summary(),
            "actions": [{"file": f, **asdict(r)} for f, r in self.actions],
        }

    def to_json(self, path: Path) -> None:
        self._check_outside_export(path)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    def to_csv(self, path: Path) -> None:
        self._check_outside_export(path)
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "path", "tag", "name", "action", "rule"])
            for f, r in self.actions:
                w.writerow([f, r.path, r.tag, r.name, r.action, r.rule])

    def save(self, path: Path) -> None:
        """Write as CSV when the name ends in .csv, else JSON.

        Raises:
            ValueError: ``path`` is inside the output folder (the report names the
                source files, which can hold identity).
        """
        if str(path).lower().endswith(".csv"):
            self.to_csv(path)
        else:
            self.to_json(path)

    def _check_outside_export(self, path: Path) -> None:
        if not self.out_dir:
            return
        target = Path(path).expanduser().resolve()
        if target.is_relative_to(Path(self.out_dir).expanduser().resolve()):
            raise ValueError("the report names the source files, so it is not written into "
                             f"the anonymised export {self.out_dir}; save it elsewhere")
