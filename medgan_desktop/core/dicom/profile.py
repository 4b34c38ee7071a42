"""PS3.15 Annex E Basic Application Level Confidentiality Profile: rule lookup.

The table itself (edition :data:`EDITION`) is the generated data module
:mod:`medgan_desktop.core.dicom.ps315_table`. This module turns it into a lookup from a
tag to its action under a set of enabled options, resolves the combined action codes
(``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) by the attribute's Type in the
object's IOD, and carries the option code values (PS3.16 CID 7050) and the Retain Safe
Private list (Table E.3.10-1, generated module
:mod:`medgan_desktop.core.dicom.ps315_safe_private`, which pins its own edition:
:data:`SAFE_PRIVATE_EDITION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from medgan_desktop.core.dicom.ps315_safe_private import EDITION as SAFE_PRIVATE_EDITION
from medgan_desktop.core.dicom.ps315_safe_private import ROWS as SAFE_PRIVATE_ROWS
from medgan_desktop.core.dicom.ps315_table import EDITION, ROWS

__all__ = [
    "EDITION",
    "OPTION_CODES",
    "RULES",
    "SAFE_PRIVATE",
    "SAFE_PRIVATE_EDITION",
    "Action",
    "Option",
    "Rule",
    "SafePrivate",
    "attribute_type",
    "is_safe_private",
    "lookup",
    "resolve",
    "safe_private_rule",
]


class Action(StrEnum):
    """Single action codes of Table E.1-1."""

    DUMMY = "D"
    ZERO = "Z"
    REMOVE = "X"
    KEEP = "K"
    CLEAN = "C"
    UID = "U"


class Option(StrEnum):
    """Option columns of Table E.1-1 that the product lets a user switch on."""

    LONG_FULL_DATES = "rtnLongFullDatesOpt"
    LONG_MODIF_DATES = "rtnLongModifDatesOpt"
    PATIENT_CHARS = "rtnPatCharsOpt"
    DEVICE_ID = "rtnDevIdOpt"
    SAFE_PRIVATE = "rtnSafePrivOpt"
    CLEAN_DESCRIPTORS = "cleanDescOpt"


#: (code value, code meaning) for DeidentificationMethodCodeSequence (CID 7050).
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES: dict[Option, tuple[str, str]] = {
    Option.LONG_FULL_DATES: ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.LONG_MODIF_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.PATIENT_CHARS: ("113108", "Retain Patient Characteristics Option"),
    Option.DEVICE_ID: ("113109", "Retain Device Identity Option"),
    Option.SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
}


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1."""

    key: str
    name: str
    basic: str
    options: dict[str, str]


RULES: dict[str, Rule] = {r[0]: Rule(r[0], r[1], r[2], r[3]) for r in ROWS}
_CURVE = RULES["50xxxxxx"]
_OVERLAY_DATA = RULES["60xx3000"]
_OVERLAY_COMMENTS = RULES["60xx4000"]
PRIVATE_RULE = RULES["ggggeeee-where-gggg-is-odd"]


def lookup(tag: int) -> Rule | None:
    """The Table E.1-1 row governing a standard (even group) tag, or None."""
    rule = RULES.get(f"{tag:08x}")
    if rule is not None:
        return rule
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 0xFF00 == 0x5000 and group & 1 == 0:
        return _CURVE
    if group & 0xFF00 == 0x6000 and group & 1 == 0:
        if elem == 0x3000:
            return _OVERLAY_DATA
        if elem == 0x4000:
            return _OVERLAY_COMMENTS
    return None


def resolve(rule: Rule, enabled: tuple[Option, ...]) -> str:
    """The action code for ``rule`` once the enabled options (in priority order) apply.

    Options are tried in the order given; the first one with an entry in the row wins.
    Returns a single or combined code (the caller resolves combined codes by type).
    """
    for opt in enabled:
        code = rule.options.get(opt.value)
        if code is not None:
            return code
    return rule.basic


# Attribute Type (PS3.3) for the attributes whose Table E.1-1 action is a combined code,
# for "classic" single-frame image IODs (CT, MR, CR, DX, US, SC, XA, NM, PT, ...) and for
# the multi-frame functional-group IODs (Enhanced CT/MR/XA, ...). Only Type 1 and 2 are
# listed; anything else is treated as Type 3. "2C"/"1C" are taken as 2/1 (the safe side:
# an attribute that may be required is kept present).
_TYPE_CLASSIC: dict[int, str] = {
    0x00080023: "2",  # Content Date (General Image, 2C)
    0x00080033: "2",  # Content Time (General Image, 2C)
    0x00100020: "2",  # Patient ID (Patient)
    0x00180010: "2",  # Contrast/Bolus Agent (Contrast/Bolus)
    0x00700084: "2",  # Content Creator's Name (Presentation State Identification)
    0x00102203: "2",  # Patient's Sex Neutered (Patient, 2C for animals)
    0x300E0008: "2",  # Reviewer Name (Approval, 2C)
    0x22000002: "2",  # Label Text (Media Creation Management)
    0x22000005: "2",  # Barcode Value
    0x300A00B2: "2",  # Treatment Machine Name (RT Beams, 2)
    # attributes Table E.1-1 does not list, given combined codes by the anonymiser's
    # supplement (anonymize_rules.SUPPLEMENT)
    0x00080070: "2",  # Manufacturer (General Equipment)
    0x00201040: "2",  # Position Reference Indicator (Frame of Reference)
    0x00700081: "2",  # Content Description (Content Identification)
}
_TYPE_ENHANCED: dict[int, str] = {
    **_TYPE_CLASSIC,
    0x00080023: "1",  # Content Date (Multi-frame: Enhanced General Image 1)
    0x00080033: "1",  # Content Time
    0x0008002A: "1",  # Acquisition DateTime (Enhanced CT/MR Image, 1C)
    0x00181000: "1",  # Device Serial Number (Enhanced General Equipment 1)
    0x00400555: "2",  # Acquisition Context Sequence (Acquisition Context 2)
    0x00080070: "1",  # Manufacturer (Enhanced General Equipment 1)
    0x00081090: "1",  # Manufacturer's Model Name (Enhanced General Equipment 1)
    0x00181020: "1",  # Software Versions (Enhanced General Equipment 1)
}


def attribute_type(tag: int, enhanced: bool) -> str:
    """The Type ("1", "2" or "3") of an attribute with a combined action code."""
    return (_TYPE_ENHANCED if enhanced else _TYPE_CLASSIC).get(tag, "3")


def choose_combined(code: str, tag: int, enhanced: bool) -> str:
    """Resolve a combined code to a single one by the attribute's Type (PS3.15 E.3).

    ``X/Z``: Z if Type 1/2, else X. ``X/D``: D if Type 1/2 (a dummy keeps a Type 1 valid;
    for Type 2 D is also valid), else X. ``Z/D``: D if Type 1, else Z. ``X/Z/D``: D if
    Type 1, Z if Type 2, else X. ``X/Z/U*``: U (keep the sequence, replace its UIDs),
    which keeps the references resolvable inside the export.
    """
    if "/" not in code:
        return code
    t = attribute_type(tag, enhanced)
    if code == "X/Z":
        return "Z" if t in ("1", "2") else "X"
    if code == "X/D":
        return "D" if t in ("1", "2") else "X"
    if code == "Z/D":
        return "D" if t == "1" else "Z"
    if code == "X/Z/D":
        return {"1": "D", "2": "Z"}.get(t, "X")
    if code.startswith("X/Z/U"):
        return "U"
    raise ValueError(f"unknown action code {code!r}")


# Retain Safe Private Option (PS3.15 E.3.10): the private attributes Table E.3.10-1 lists
# as safe (generated module :mod:`.ps315_safe_private`, edition SAFE_PRIVATE_EDITION).
@dataclass(frozen=True)
class SafePrivate:
    """One row of Table E.3.10-1: a private attribute known to carry no identity."""

    group: int
    offset: int  # element number inside the private block (the ``ee`` of ``(gggg,xxee)``)
    creator: str
    vr: str  # "" where the table gives none; "OW/OB" for alternatives
    vm: str
    meaning: str

    @property
    def vrs(self) -> tuple[str, ...]:
        """The VRs the table allows (empty when it gives none)."""
        return tuple(self.vr.split("/")) if self.vr else ()

    def vm_allows(self, n: int) -> bool:
        """Whether a value multiplicity of ``n`` fits the table's VM (an empty value always does)."""
        if n == 0:
            return True
        lo, _, hi = self.vm.partition("-")
        if not hi:
            return n == int(lo)
        if hi.endswith("n"):  # "1-n", "2-n", "2-2n": at least lo, a multiple of the step
            step = int(hi[:-1] or 1)
            return n >= int(lo) and n % step == 0
        return int(lo) <= n <= int(hi)


#: Table E.3.10-1 keyed by (private creator, group, element offset); creators are matched
#: exactly (after removing value padding), as PS3.5 7.8.1 identifies a block by its creator.
SAFE_PRIVATE: dict[tuple[str, int, int], SafePrivate] = {
    (r[2], r[0], r[1]): SafePrivate(*r) for r in SAFE_PRIVATE_ROWS
}


def safe_private_rule(creator: str, group: int, elem: int) -> SafePrivate | None:
    """The Table E.3.10-1 row for private element ``(group, elem)`` in ``creator``'s block.

    ``elem`` is the full element number (``0xxxee``); only blocks 0x10-0xFF are private
    data blocks, so anything else (and any even or reserved group) never matches.
    """
    if not group & 1 or not 0x10 <= elem >> 8 <= 0xFF:
        return None
    return SAFE_PRIVATE.get((creator.strip(" \x00"), group, elem & 0xFF))


def is_safe_private(creator: str, group: int, elem: int) -> bool:
    """True when a private element is on the Retain Safe Private list (Table E.3.10-1)."""
    return safe_private_rule(creator, group, elem) is not None
