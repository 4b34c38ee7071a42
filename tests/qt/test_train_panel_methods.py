"""TrainPanel method, data and layout settings: the recommended default, presets without
carry-over, the method-option form drawn from each method's own Options dataclass (and the
methods really reading those options), volume/series data options, the translation tab,
and no sideways scrolling at the default window size."""

from __future__ import annotations

import dataclasses
import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QMessageBox, QScrollArea, QSpinBox, QWidget

from medgan_desktop.core.config import Settings
from medgan_desktop.core.gan.methods.base import MethodConfig, Task, available_methods, get_method
from medgan_desktop.core.gan.options import OptionInfo
from medgan_desktop.core.gan.recommend import ALIAS, RECOMMENDED_METHOD, describe, preset, recommended_config
from medgan_desktop.qt.context import AppContext
from medgan_desktop.qt.panels.train import TRANSLATION_WIDGET_MODULE, TrainPanel


@pytest.fixture()
def ctx(monkeypatch: pytest.MonkeyPatch) -> AppContext:
    messages: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: messages.append(str(a[2])))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: messages.append(str(a[2])))
    c = AppContext(Settings.default())
    c.messages = messages  # type: ignore[attr-defined]
    return c


@pytest.fixture()
def panel(qtbot, ctx: AppContext) -> TrainPanel:  # type: ignore[no-untyped-def]
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    return p


def _select(panel: TrainPanel, key: str) -> None:
    i = panel.method_combo.findData(key)
    assert i >= 0, key
    panel.method_combo.setCurrentIndex(i)


def _entry_preset(key: str) -> MethodConfig:
    return recommended_config() if key == ALIAS else preset(key)


def test_opens_on_the_recommended_setting(panel: TrainPanel, tmp_path: Path) -> None:
    assert panel.method_combo.currentData() == ALIAS and panel.method_combo.currentIndex() == 0
    assert panel.selected_method() == RECOMMENDED_METHOD
    assert "(recommended)" in panel.method_combo.currentText()
    assert panel.method_combo.itemData(0, 3) == describe()  # Qt.ToolTipRole
    assert panel.method_desc.text() == describe()
    # the plain method is listed too, without the recommended options
    assert panel.method_combo.findData(RECOMMENDED_METHOD) > 0
    assert panel.method_config() == recommended_config(size=64)
    panel.size_combo.setCurrentIndex(panel.size_combo.findData(128))
    panel.batch_spin.setValue(16)
    panel.data_box.path_edit.setText(str(tmp_path))
    assert panel.method_config() == recommended_config(size=128)
    tcfg = panel.train_config(panel.data_config())
    assert tcfg.batch_size == 16 and tcfg.data.size == 128


def test_switching_methods_sets_every_field_from_the_preset(panel: TrainPanel) -> None:
    keys = [panel.method_combo.itemData(i) for i in range(panel.method_combo.count())]
    assert keys[0] == ALIAS and set(keys[1:]) == set(available_methods(Task.SYNTHESIS))
    # every entry, in an order that goes from rich presets to empty ones and back
    for key in ["stylegan2", "dcgan", "progressive", ALIAS, "wgan_gp", "stylegan2", "lsgan", "cgan", "dcgan"]:
        _select(panel, key)
        p = _entry_preset(key)
        assert panel.diffaug_edit.text() == p.diffaugment, key
        assert panel.ema_spin.value() == p.ema_decay, key
        assert panel.lr_spin.value() == p.lr_g, key
        cls = get_method(panel.selected_method())
        shown = {f.name for f, info in cls.Options.fields_info() if info.form}
        assert set(panel.options_box.widgets) == shown, key
        assert panel.options_box.values() == {}, key
        assert panel.method_config() == dataclasses.replace(p, size=64, channels=1), key
    _select(panel, "dcgan")  # after stylegan2 and the recommended entry: nothing carried over
    assert panel.diffaug_edit.text() == "" and panel.ema_spin.value() == 0.0


def test_method_options_are_written_only_when_changed_and_reset_on_switch(panel: TrainPanel) -> None:
    _select(panel, "wgan_gp")
    crit = panel.options_box.widgets["n_critic"]
    assert isinstance(crit, QSpinBox) and crit.value() == 5 and "Critic" in crit.toolTip()
    crit.setValue(3)
    assert panel.method_config().extra == {"n_critic": 3}
    _select(panel, "dcgan")
    assert panel.method_config().extra == {}
    _select(panel, "wgan_gp")
    assert panel.options_box.widgets["n_critic"].value() == 5  # type: ignore[attr-defined]
    # the previous method's fields are gone from the form, not just hidden behind the new ones
    shown = {w for w in panel.options_box.findChildren(QWidget)
             if w.parent() is panel.options_box and not w.isHidden() and not isinstance(w, QLabel)}
    assert shown == set(panel.options_box.widgets.values())
    assert panel.method_config().extra == {}

    _select(panel, "stylegan2")
    r1 = panel.options_box.widgets["r1_gamma"]
    assert isinstance(r1, QDoubleSpinBox) and r1.text() == "auto"
    ada = panel.options_box.widgets["ada"]
    assert isinstance(ada, QCheckBox)
    ada.setChecked(True)
    r1.setValue(2.5)
    assert panel.method_config().extra == {"ada": True, "r1_gamma": 2.5}
    _select(panel, "progressive")
    phase = panel.options_box.widgets["phase_steps"]
    assert isinstance(phase, QSpinBox)
    phase.setValue(40)
    assert panel.method_config().extra == {"phase_steps": 40}
    _select(panel, "cgan")
    cond = panel.options_box.widgets["g_cond"]
    assert isinstance(cond, QComboBox)
    cond.setCurrentIndex(cond.findData("concat"))
    assert panel.method_config().extra == {"g_cond": "concat"}


def _build(method: str, **extra: Any) -> Any:
    cfg = MethodConfig(size=32, base_filters=8, latent_dim=16, num_classes=2 if method == "cgan" else 0,
                       diffaugment="translation", extra=extra)
    return get_method(method)(cfg, torch.device("cpu"))


def _probe(m: Any, key: str) -> Any:
    """What the built method actually uses for option ``key``."""
    if key == "spectral_norm":
        return any("parametrizations" in n for n, _ in m.D.named_parameters())
    if key == "g_cond":
        return str(m.G.cond)
    if key == "ada":
        return m.ada is not None
    if key == "ada_target":
        return m.ada.target
    if key == "mapping_layers":
        return sum(p.ndim == 2 for p in m.G.mapping.parameters())
    return getattr(m, key)


def _other(info: OptionInfo, default: Any) -> Any:
    if info.choices:
        return next(c for c in info.choices if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return int(default) + 1
    if default is None:
        return 2.5
    return float(default) + 0.5 if float(default) + 0.5 <= info.hi else float(default) / 2


_FORM = {name: [(f.name, info, f.default) for f, info in cls.Options.fields_info() if info.form]
         for name, cls in available_methods(Task.SYNTHESIS).items()}


@pytest.mark.parametrize("method", sorted(m for m, opts in _FORM.items() if opts))
def test_form_options_are_what_the_methods_read(method: str) -> None:
    """Each option in the form is read by the method, at the default its dataclass declares."""
    torch.manual_seed(0)
    for key, info, default in _FORM[method]:
        needs = {"ada": True} if key == "ada_target" else {}
        plain = _probe(_build(method, **needs), key)
        if default is not None:  # None: "auto", the method resolves it (its own heuristic)
            assert plain == default, (method, key, plain)
        changed = _other(info, default)
        assert _probe(_build(method, **needs, **{key: changed}), key) == changed, (method, key)


def test_unknown_option_is_refused_by_the_dataclass() -> None:
    from medgan_desktop.core.gan.options import OptionError

    cls = get_method("wgan_gp")
    with pytest.raises(OptionError, match="n_critic"):
        cls.Options.from_extra({"n_critics": 3})
    with pytest.raises(OptionError, match="whole number"):
        cls.Options.from_extra({"n_critic": "three"})
    assert cls.Options.from_extra({"n_critic": 3}).n_critic == 3


def test_cgan_ticks_class_labels_and_a_manual_tick_stays(panel: TrainPanel, ctx: AppContext, tmp_path: Path) -> None:
    assert not panel.data_box.labels_check.isChecked()
    _select(panel, "cgan")
    assert panel.data_box.labels_check.isChecked()
    _select(panel, "stylegan2")  # would silently become conditional otherwise
    assert not panel.data_box.labels_check.isChecked()
    panel.data_box.labels_check.setChecked(True)  # the user's own choice survives a switch
    _select(panel, "cgan")
    _select(panel, "dcgan")
    assert panel.data_box.labels_check.isChecked()
    # cgan without labels: an honest message, nothing starts
    _select(panel, "cgan")
    panel.data_box.labels_check.setChecked(False)
    panel.data_box.path_edit.setText(str(tmp_path))
    panel.start()
    assert not panel.is_training() and any("class-conditional" in m for m in ctx.messages)  # type: ignore[attr-defined]


def test_data_options_reach_the_data_config(panel: TrainPanel, tmp_path: Path) -> None:
    panel.data_box.path_edit.setText(str(tmp_path))
    d = panel.data_config()
    assert (d.channels, d.axis, d.modality, d.window_lo, d.window_hi) == (1, 0, "", None, None)
    panel.data_box.channels_combo.setCurrentIndex(panel.data_box.channels_combo.findData(3))
    panel.data_box.axis_combo.setCurrentIndex(panel.data_box.axis_combo.findData(2))
    panel.data_box.modality_combo.setCurrentIndex(panel.data_box.modality_combo.findData("CT"))
    panel.data_box.window_check.setChecked(True)
    panel.data_box.window_lo.setValue(-200)
    panel.data_box.window_hi.setValue(400)
    d = panel.data_config()
    assert (d.channels, d.axis, d.modality, d.window_lo, d.window_hi) == (3, 2, "CT", -200.0, 400.0)
    assert panel.method_config().channels == 3
    panel.data_box.window_hi.setValue(-300)
    with pytest.raises(ValueError, match="lower bound"):
        panel.data_config()


def test_translation_tab_placeholder_without_the_widget(qtbot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, TRANSLATION_WIDGET_MODULE, None)  # find_spec -> None
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert p.tabs.count() == 2 and p.translation_widget is None
    label = p.tabs.widget(1)
    assert isinstance(label, QLabel) and "not available" in label.text()
    synth_height = p.tabs.minimumSizeHint().height()
    p.tabs.setCurrentIndex(1)  # the tabs take the shown page's height, not the tallest page's
    assert p.tabs.minimumSizeHint().height() < synth_height / 3
    assert p.method_combo.findData("pix2pix") < 0


def test_translation_tab_hosts_the_widget(qtbot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    built: list[Any] = []

    class FakeWidget(QWidget):
        def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
            super().__init__(parent)
            built.append(context)

    mod = types.ModuleType(TRANSLATION_WIDGET_MODULE)
    mod.__spec__ = importlib.machinery.ModuleSpec(TRANSLATION_WIDGET_MODULE, None)
    mod.TranslationTrainWidget = FakeWidget  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, TRANSLATION_WIDGET_MODULE, mod)
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    assert built == [ctx] and isinstance(p.translation_widget, FakeWidget)
    assert p.tabs.widget(1) is p.translation_widget


def test_translation_widget_failure_is_shown_in_its_tab(qtbot, ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    class Broken(QWidget):
        def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
            raise RuntimeError("no pairs module")

    mod = types.ModuleType(TRANSLATION_WIDGET_MODULE)
    mod.__spec__ = importlib.machinery.ModuleSpec(TRANSLATION_WIDGET_MODULE, None)
    mod.TranslationTrainWidget = Broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, TRANSLATION_WIDGET_MODULE, mod)
    p = TrainPanel(ctx)
    qtbot.addWidget(p)
    label = p.tabs.widget(1)
    assert p.translation_widget is None and isinstance(label, QLabel) and "no pairs module" in label.text()
    assert p.method_combo.count() > 1  # the synthesis tab still works


def test_no_sideways_scrolling_in_the_default_window(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from medgan_desktop.qt.main_window import MainWindow

    ctx = AppContext(Settings.default())
    win = MainWindow(ctx, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.docks["train"].raise_()
    area = win.docks["train"].widget()
    assert isinstance(area, QScrollArea)
    avail = win.screen().availableGeometry()
    assert win.width() <= max(avail.width(), win.minimumSizeHint().width())
    panel = win.panels["train"]
    assert isinstance(panel, TrainPanel)
    for advanced in (False, True):
        panel.set_advanced_visible(advanced)
        for key in [panel.method_combo.itemData(i) for i in range(panel.method_combo.count())]:
            _select(panel, key)
            qtbot.waitUntil(lambda: panel.minimumSizeHint().width() <= area.viewport().width(),
                            timeout=2000)
            assert area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            assert panel.width() <= area.viewport().width(), (advanced, key)


def test_a_kept_class_label_tick_is_never_silently_unused(panel: TrainPanel) -> None:
    _select(panel, "cgan")
    box = panel.data_box
    assert box.labels_check.isEnabled() and box.labels_check.isChecked()
    box.labels_check.setChecked(False)
    box.labels_check.setChecked(True)  # the user's own tick (kept through a switch)
    _select(panel, "dcgan")
    assert box.labels_check.isChecked() and not box.labels_check.isEnabled()
    assert any("dcgan does not use class labels" in line and "no effect" in line
               for line in panel.notice_label.lines())
    assert "does not use class labels" in box.labels_check.toolTip()


def test_keep_best_by_validation_reaches_the_train_config(panel: TrainPanel, tmp_path: Path) -> None:
    panel.data_box.path_edit.setText(str(tmp_path))
    off = panel.train_config(panel.data_config())
    assert off.val_every == 0 and off.data.val_share == 0.0 and not panel.val_share_spin.isEnabled()
    panel.val_spin.setValue(500)
    assert panel.val_share_spin.isEnabled()
    panel.val_share_spin.setValue(0.15)
    on = panel.train_config(panel.data_config()).validate()
    assert on.val_every == 500 and on.data.val_share == 0.15
