"""C-ECHO / C-STORE against a real Orthanc started on loopback by the test."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medgan_desktop.core.dicom.pacs import DicomNode, echo, echo_message, send_files
from medgan_desktop.core.dicom.write import write_volume_series
from medgan_desktop.core.volume import Volume
from tests.core.dicom3tools import free_port as _free_port
from tests.core.dicom3tools import orthanc_rest as _rest
from tests.core.dicom3tools import orthanc_server

AET = "TESTPACS"


def _rest_bytes(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return bytes(r.read())


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """A private Orthanc (temp storage, free ports, loopback only); yields (dicom, http)."""
    with orthanc_server(tmp_path_factory.mktemp("orthanc"), AET) as ports:
        yield ports


@pytest.fixture()
def series(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    arr = rng.integers(-1000, 2000, size=(5, 16, 16)).astype(np.float32)
    vol = Volume(arr, spacing=(0.8, 0.8, 2.0), modality="CT", units="HU")
    return write_volume_series(vol, tmp_path / "ct", patient_name="Pacs^Test",
                               patient_id="PACS1", series_description="to pacs")


def test_echo(orthanc: tuple[int, int]) -> None:
    dicom_port, _ = orthanc
    assert echo(DicomNode(AET, "127.0.0.1", dicom_port))


def test_send_series_arrives_complete_and_intact(orthanc: tuple[int, int],
                                                 series: list[Path]) -> None:
    dicom_port, http_port = orthanc
    seen: list[int] = []
    report = send_files(DicomNode(AET, "127.0.0.1", dicom_port), series,
                        progress=lambda p: seen.append(p.done))
    assert report.ok, report.summary()
    assert report.sent == 5 and seen[-1] == 5
    assert all(f.status == "ok" and f.dimse_status == 0 for f in report.files)
    sent = [pydicom.dcmread(p) for p in series]
    uid = sent[0].SeriesInstanceUID
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/tools/find",
        data=json.dumps({"Level": "Instance", "Query": {"SeriesInstanceUID": uid}}).encode(),
        method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        ids = json.loads(r.read())
    assert len(ids) == 5
    # spot check: a tag and the pixels of one instance, as stored by the PACS
    by_sop = {d.SOPInstanceUID: d for d in sent}
    for oid in ids[:2]:
        tags = _rest(http_port, f"/instances/{oid}/simplified-tags")
        assert isinstance(tags, dict)
        src = by_sop[tags["SOPInstanceUID"]]
        assert tags["PatientID"] == "PACS1"
        stored = pydicom.dcmread(io.BytesIO(_rest_bytes(http_port, f"/instances/{oid}/file")))
        np.testing.assert_array_equal(stored.pixel_array, src.pixel_array)


def test_wrong_called_aet_is_rejected_with_a_clear_message(orthanc: tuple[int, int],
                                                           series: list[Path]) -> None:
    dicom_port, _ = orthanc
    node = DicomNode("NOTTHEPACS", "127.0.0.1", dicom_port, timeout=20)  # a loaded machine rejects slowly
    ok, msg = echo_message(node)
    assert not ok and "rejected the association" in msg
    report = send_files(node, series[:2], retries=0)
    assert not report.ok and report.sent == 0
    assert "rejected" in report.error
    assert all(f.status == "failed" for f in report.files)


def test_silent_peer_times_out(series: list[Path]) -> None:
    with socket.socket() as srv:  # accepts TCP but never speaks DICOM
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        node = DicomNode("X", "127.0.0.1", srv.getsockname()[1], timeout=1.0)
        t0 = time.monotonic()
        ok, msg = echo_message(node)
        assert not ok and ("no answer" in msg or "aborted" in msg)
        assert time.monotonic() - t0 < 10


def test_nothing_listening(series: list[Path]) -> None:
    node = DicomNode("X", "127.0.0.1", _free_port(), timeout=2.0)
    report = send_files(node, series, retries=1)
    assert not report.ok and report.sent == 0 and report.error
    assert len(report.files) == len(series)


def test_node_validation() -> None:
    with pytest.raises(ValueError):
        DicomNode("A" * 17, "h", 104)
    with pytest.raises(ValueError):
        DicomNode("A", "h", 0)


def test_cli_echo_and_send(orthanc: tuple[int, int], series: list[Path],
                           capsys: pytest.CaptureFixture[str]) -> None:
    from medgan_desktop.cli import main

    dicom_port, http_port = orthanc
    common = ["--host", "127.0.0.1", "--port", str(dicom_port), "--called-aet", AET]
    assert main(["echo", *common]) == 0
    assert "answered C-ECHO" in capsys.readouterr().out
    before = len(_rest(http_port, "/instances"))  # type: ignore[arg-type]
    assert main(["send", str(series[0].parent), *common]) == 0
    assert "sent 5/5" in capsys.readouterr().out
    assert len(_rest(http_port, "/instances")) == before + 5  # type: ignore[arg-type]
    assert main(["echo", "--host", "127.0.0.1", "--port", str(dicom_port),
                 "--called-aet", "WRONG", "--timeout", "20"]) == 1
    assert "rejected" in capsys.readouterr().err
