"""Send DICOM files to a PACS: C-ECHO to test a destination, C-STORE with per-file status.

Uses pynetdicom. Every network wait is bounded (association, DIMSE and network
timeouts); failures come back as plain messages (association rejected, no answer in
time, connection refused) rather than exceptions where a caller wants a report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.errors import InvalidDicomError

from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress

if TYPE_CHECKING:
    from pydicom import Dataset
    from pynetdicom import AE
    from pynetdicom.association import Association

__all__ = [
    "DicomNode",
    "FileStatus",
    "PacsError",
    "SendReport",
    "echo",
    "echo_message",
    "send_files",
]

log = logging.getLogger(__name__)


class PacsError(ConnectionError):
    """The destination could not be reached or refused the association."""


@dataclass
class DicomNode:
    """A DICOM destination.

    Args:
        ae_title: the destination's (called) AE title.
        host: its host name or address.
        port: its DICOM port.
        calling_ae: our AE title.
        timeout: seconds to wait for the association, each response and the network.
    """

    ae_title: str
    host: str
    port: int
    calling_ae: str = "MEDGAN"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        for name, value in (("AE title", self.ae_title), ("calling AE title", self.calling_ae)):
            if not value or len(value) > 16 or "\\" in value:
                raise ValueError(f"{name} must be 1-16 characters without '\\': {value!r}")
        if not 0 < int(self.port) < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port}")

    def describe(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class FileStatus:
    """The outcome for one file: ``ok``, ``failed`` or ``skipped`` with the reason."""

    path: str
    status: str
    message: str = ""
    dimse_status: int | None = None
    attempts: int = 0


@dataclass
class SendReport:
    """Per-file results of a send."""

    node: str
    files: list[FileStatus] = field(default_factory=list)
    error: str = ""

    @property
    def sent(self) -> int:
        return sum(1 for f in self.files if f.status == "ok")

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if f.status != "ok")

    @property
    def ok(self) -> bool:
        return not self.error and self.failed == 0 and bool(self.files)

    def summary(self) -> str:
        head = f"sent {self.sent}/{len(self.files)} file(s) to {self.node}"
        if self.error:
            head += f": {self.error}"
        return head


def _ae(node: DicomNode) -> AE:
    from pynetdicom import AE

    ae = AE(ae_title=node.calling_ae)
    ae.acse_timeout = node.timeout
    ae.dimse_timeout = node.timeout
    ae.network_timeout = node.timeout
    ae.connection_timeout = node.timeout
    return ae


def _explain(assoc: Association, node: DicomNode) -> str:
    if assoc.is_rejected:
        return (f"{node.describe()} rejected the association: check that it knows our AE "
                f"title {node.calling_ae!r} and that its AE title is {node.ae_title!r}")
    if assoc.is_aborted:
        return (f"{node.describe()} aborted the association (it refused or did not finish the "
                f"negotiation within {node.timeout:g} s: check the AE titles, or raise the timeout)")
    return (f"no answer from {node.describe()} within {node.timeout:g} s "
            "(wrong host/port, the PACS is down, or a firewall blocks it)")


def echo_message(node: DicomNode) -> tuple[bool, str]:
    """C-ECHO the destination; (success, a message for the user)."""
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = _ae(node)
    ae.add_requested_context(Verification)
    try:
        assoc = ae.associate(node.host, int(node.port), ae_title=node.ae_title)
    except (OSError, ValueError) as exc:
        return False, f"could not connect to {node.describe()}: {exc}"
    if not assoc.is_established:
        return False, _explain(assoc, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if status is not None and getattr(status, "Status", None) == 0x0000:
        return True, f"{node.describe()} answered C-ECHO"
    if status is None:
        return False, f"no C-ECHO response from {node.describe()} within {node.timeout:g} s"
    return False, f"{node.describe()} answered C-ECHO with status 0x{int(status.Status):04X}"


def echo(node: DicomNode) -> bool:
    """True when the destination answers a C-ECHO."""
    return echo_message(node)[0]


def send_files(
    node: DicomNode,
    files: Sequence[Path],
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    retries: int = 2,
) -> SendReport:
    """C-STORE files to a destination, reporting each file's outcome.

    Files that fail are retried (a new association if the old one dropped) up to
    ``retries`` more times. A destination that cannot be reached or rejects the
    association ends the send with ``report.error`` set and every unsent file failed.

    Args:
        node: the destination.
        files: DICOM files to send.
        retries: extra attempts per failed file.
    """
    report = SendReport(node=node.describe())
    datasets: list[tuple[Path, Dataset]] = []
    for p in files:
        try:
            datasets.append((Path(p), pydicom.dcmread(p)))
        except (InvalidDicomError, OSError) as exc:
            report.files.append(FileStatus(str(p), "skipped", f"not readable as DICOM: {exc}"))
    if not datasets:
        report.error = report.error or "nothing to send"
        return report
    contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
                       for _, ds in datasets})
    ae = _ae(node)
    by_class: dict[str, set[str]] = {}
    for sop, ts in contexts:
        by_class.setdefault(sop, set()).add(ts)
    for sop, tss in list(by_class.items())[:127]:
        ae.add_requested_context(sop, sorted(tss | {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}))

    assoc: Association | None = None

    def connect() -> str:
        nonlocal assoc
        try:
            assoc = ae.associate(node.host, int(node.port), ae_title=node.ae_title)
        except (OSError, ValueError) as exc:
            assoc = None
            return f"could not connect to {node.describe()}: {exc}"
        if not assoc.is_established:
            msg = _explain(assoc, node)
            assoc = None
            return msg
        return ""

    error = connect()
    total = len(datasets)
    try:
        for n, (path, ds) in enumerate(datasets):
            if cancel is not None:
                cancel.check()
            if error:
                report.files.append(FileStatus(str(path), "failed", error))
                continue
            result = FileStatus(str(path), "failed", "not sent")
            for attempt in range(1, retries + 2):
                if assoc is None or not assoc.is_established:
                    error = connect()
                    if error:
                        result = FileStatus(str(path), "failed", error, attempts=attempt)
                        break
                assert assoc is not None  # connected
                try:
                    status = assoc.send_c_store(ds)
                except (OSError, ValueError, RuntimeError) as exc:
                    result = FileStatus(str(path), "failed", str(exc), attempts=attempt)
                    continue
                if status is None:
                    result = FileStatus(str(path), "failed",
                                        f"no C-STORE response within {node.timeout:g} s",
                                        attempts=attempt)
                    continue
                code = int(getattr(status, "Status", 0xFFFF))
                if code == 0x0000 or code & 0xF000 == 0xB000:  # success or warning
                    msg = "" if code == 0 else f"stored with warning 0x{code:04X}"
                    result = FileStatus(str(path), "ok", msg, code, attempt)
                    break
                result = FileStatus(str(path), "failed", f"C-STORE status 0x{code:04X}", code,
                                    attempt)
            report.files.append(result)
            progress(Progress(n + 1, total, f"sent {n + 1}/{total} to {node.describe()}"))
    finally:
        if assoc is not None and assoc.is_established:
            assoc.release()
    report.error = error
    log.info("%s", report.summary())
    return report
