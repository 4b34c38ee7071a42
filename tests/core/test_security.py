"""Security properties checked over the whole source tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "medgan_desktop").rglob("*.py"))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            full = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if full == name:
                out.append(node)
    return out


def test_every_torch_load_is_weights_only() -> None:
    """Checkpoints are loaded only with the safe loader (weights are safetensors)."""
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree, "load"):
            f = call.func
            if not (isinstance(f, ast.Attribute) and getattr(f.value, "id", "") == "torch"):
                continue
            kw = {k.arg: k.value for k in call.keywords}
            ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
            if not ok:
                offenders.append(f"{path.relative_to(REPO)}:{call.lineno}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


def test_no_pickle_or_network_downloads_in_the_product() -> None:
    pattern = re.compile(
        r"\bpickle\.loads?\(|urlopen\(|requests\.get|load_state_dict_from_url|hf_hub_download|"
        r"download=True"
    )
    hits = [
        f"{p.relative_to(REPO)}:{i + 1}"
        for p in SOURCES
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines())
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert not hits, f"unsafe deserialisation or downloads: {hits}"


def test_nothing_listens_on_a_network_port() -> None:
    """The product is a client only (PACS C-ECHO/C-STORE SCU); it never serves."""
    pattern = re.compile(r"\.listen\(|\.bind\(\(|start_server\(|HTTPServer|socketserver|AE\(\)\.start_server")
    hits = [
        f"{p.relative_to(REPO)}:{i + 1}"
        for p in SOURCES
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines())
        if pattern.search(line)
    ]
    assert not hits, f"code that listens on a port: {hits}"
