"""A method's options as a form, drawn from the method's own ``Options`` dataclass.

Every synthesis and translation method declares its hyperparameters once, with label, help
text and range (:mod:`medgan_desktop.core.gan.options`); this widget shows the ones marked
for the form and returns the values that differ from the defaults, which go into
``MethodConfig.extra`` exactly as ``--set KEY=VALUE`` would put them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_type_hints

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QGroupBox, QLabel, QSpinBox, QWidget

from medgan_desktop.core.gan.methods.base import GanMethod
from medgan_desktop.core.gan.options import MethodOptions, OptionInfo


def _kind(hint: Any) -> str:
    """"bool", "int", "float" or "str" from an option's type hint (``int | None`` -> int)."""
    text = str(hint)
    for kind in ("bool", "float", "int", "str"):
        if kind in text:
            return kind
    return "str"


def _widget(info: OptionInfo, kind: str, default: Any, value: Any) -> QWidget:
    w: QWidget
    if info.choices:
        combo = QComboBox()
        for ch in info.choices:
            combo.addItem(ch or "(none)", ch)
        combo.setCurrentIndex(max(0, combo.findData(str(value))))
        w = combo
    elif kind == "bool":
        box = QCheckBox(info.label)
        box.setChecked(bool(value))
        w = box
    elif kind == "int":
        spin = QSpinBox()
        spin.setRange(int(info.lo), int(info.hi))
        if info.special:
            spin.setSpecialValueText(info.special)
        spin.setValue(int(value) if value is not None else int(info.lo))
        w = spin
    else:
        dspin = QDoubleSpinBox()
        dspin.setDecimals(info.decimals)
        dspin.setRange(info.lo, info.hi)
        dspin.setSingleStep(10 ** -min(info.decimals, 2))
        if info.special:
            dspin.setSpecialValueText(info.special)
        dspin.setValue(float(value) if value is not None else info.lo)
        w = dspin
    shown = info.special if default is None and info.special else default
    w.setToolTip(f"{info.help}\n(default {shown})")
    return w


class MethodOptionsForm(QGroupBox):
    """The form of one method's options (those its ``Options`` marks for the form)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Method options", parent)
        self.grid = QGridLayout(self)
        self.grid.setHorizontalSpacing(8)
        self.widgets: dict[str, QWidget] = {}
        self._options: type[MethodOptions] = MethodOptions

    def set_method(self, cls: type[GanMethod] | None, values: Mapping[str, Any] | None = None) -> None:
        """Show ``cls``'s options at ``values`` (the method's defaults for the rest)."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()
                w.setParent(None)
                w.deleteLater()
        self.widgets = {}
        self._options = cls.Options if cls is not None else MethodOptions
        defaults = self._options()
        hints = get_type_hints(self._options)
        shown = [(f, info) for f, info in self._options.fields_info() if info.form]
        name = cls.name if cls is not None else "none"
        self.setTitle(f"Method options: {name}" + ("" if shown else " (none)"))
        vals = dict(values or {})
        for i, (f, info) in enumerate(shown):
            default = getattr(defaults, f.name)
            w = _widget(info, _kind(hints.get(f.name)), default, vals.get(f.name, default))
            self.widgets[f.name] = w
            r, c = divmod(i, 2)
            if isinstance(w, QCheckBox):
                self.grid.addWidget(w, r, 2 * c, 1, 2)
            else:
                lab = QLabel(info.label)
                lab.setToolTip(w.toolTip())
                lab.setBuddy(w)
                self.grid.addWidget(lab, r, 2 * c)
                self.grid.addWidget(w, r, 2 * c + 1)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnStretch(3, 1)

    def values(self) -> dict[str, Any]:
        """The options whose values differ from the method's defaults."""
        defaults = self._options()
        infos = dict((f.name, info) for f, info in self._options.fields_info())
        out: dict[str, Any] = {}
        for key, w in self.widgets.items():
            value: Any
            if isinstance(w, QComboBox):
                value = w.currentData()
            elif isinstance(w, QCheckBox):
                value = w.isChecked()
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                value = w.value()
                if infos[key].special and value == w.minimum():
                    value = None  # "the method decides"
                elif isinstance(getattr(defaults, key), float) and isinstance(value, int):
                    value = float(value)
            else:
                continue
            if value != getattr(defaults, key):
                out[key] = value
        return out
