"""Typed method options: each GAN method's own hyperparameters, with their defaults in one place.

A method declares a frozen dataclass derived from :class:`MethodOptions` (its ``Options``);
each field is made with :func:`option`, which records the label, help text and range the
Train panel draws its form from. The values travel in ``MethodConfig.extra`` (and so in
``run.json``); :meth:`MethodOptions.from_extra` checks them: an unknown key or a value of
the wrong kind is refused with a sentence naming the valid keys, which is what
``medgan train --set`` and ``--config`` report.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, get_type_hints

from medgan_desktop.core.types import JsonObject

log = logging.getLogger(__name__)


class OptionError(ValueError):
    """A method option is unknown or has a value of the wrong kind."""


@dataclass(frozen=True)
class OptionInfo:
    """How the Train panel shows one option.

    Args:
        label: the form label.
        help: the tooltip (what it does, sensible values).
        lo / hi: the spin-box range of a number.
        decimals: decimals of a float spin box.
        choices: the allowed values of a text option (a combo box).
        special: text shown at the minimum of a spin box, meaning "the method decides"
            (the field's value is then ``None``).
        form: shown in the Train panel's form (False: CLI/config only).
    """

    label: str
    help: str
    lo: float = 0.0
    hi: float = 1000.0
    decimals: int = 3
    choices: tuple[str, ...] = ()
    special: str = ""
    form: bool = True


_INFO = "medgan.option"


def option(
    default: Any,
    label: str,
    help: str,
    *,
    lo: float = 0.0,
    hi: float = 1000.0,
    decimals: int = 3,
    choices: tuple[str, ...] = (),
    special: str = "",
    form: bool = True,
) -> Any:
    """A dataclass field of a :class:`MethodOptions` with its form description."""
    info = OptionInfo(label, help, lo, hi, decimals, choices, special, form)
    return dataclasses.field(default=default, metadata={_INFO: info})


def _kind_ok(value: Any, hint: Any) -> bool:
    text = str(hint)
    if value is None:
        return "None" in text
    if "bool" in text and isinstance(value, bool):
        return True
    if isinstance(value, bool):
        return False
    if "float" in text and isinstance(value, int | float):
        return True
    if "int" in text and isinstance(value, int):
        return True
    if "str" in text and isinstance(value, str):
        return True
    return "Any" in text


def _kind_name(hint: Any) -> str:
    text = str(hint)
    for key, name in (("bool", "true or false"), ("float", "a number"), ("int", "a whole number"),
                      ("str", "text")):
        if key in text:
            return name
    return "a value"


@dataclass(frozen=True)
class MethodOptions:
    """Base of the per-method option dataclasses (no options)."""

    @classmethod
    def fields_info(cls) -> list[tuple[dataclasses.Field[Any], OptionInfo]]:
        """The options and how each is shown, in declaration order."""
        out = []
        for f in dataclasses.fields(cls):
            info = f.metadata.get(_INFO)
            out.append((f, info if isinstance(info, OptionInfo) else OptionInfo(f.name, "")))
        return out

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], *, strict: bool = True) -> Self:
        """The options in ``extra`` (the rest at their defaults).

        Args:
            extra: ``MethodConfig.extra``.
            strict: refuse unknown keys (new settings); otherwise they are ignored with a
                log message (a run written by another version).

        Raises:
            OptionError: an unknown key (strict) or a value of the wrong kind.
        """
        names = cls.names()
        hints = get_type_hints(cls)
        kw: dict[str, Any] = {}
        for key, given in extra.items():
            if key not in names:
                if strict:
                    close = difflib.get_close_matches(key, names, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    valid = ", ".join(names) or "none"
                    raise OptionError(f"unknown option {key!r}{hint}; this method's options: {valid}")
                log.info("ignoring unknown method option %r", key)
                continue
            hint = hints.get(key, Any)
            value = given
            if "float" in str(hint) and isinstance(given, int) and not isinstance(given, bool):
                value = float(given)
            if not _kind_ok(value, hint):
                raise OptionError(f"option {key} must be {_kind_name(hint)}, got {value!r}")
            f = next(f for f, _ in cls.fields_info() if f.name == key)
            info = f.metadata.get(_INFO)
            if isinstance(info, OptionInfo) and info.choices and value not in info.choices:
                raise OptionError(f"option {key} must be one of {', '.join(info.choices)}, got {value!r}")
            kw[key] = value
        return cls(**kw)

    def to_extra(self, *, all_values: bool = False) -> JsonObject:
        """The options that differ from the defaults (or all of them), as ``extra``."""
        base = type(self)()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if all_values or getattr(self, f.name) != getattr(base, f.name)
        }
