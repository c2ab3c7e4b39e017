"""Every public function and class of ``detectors`` carries a runnable example in its docstring
(the doctests themselves run through pytest's ``--doctest-modules``)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["detectors", "detectors.data", "detectors.losses", "detectors.models"]
CLI_MODULES = ["detectors.train", "detectors.predict", "detectors.synth", "detectors.config"]
FACES = ["detectors.faces", "detectors.sbi", "detectors.prepare", "detectors.demo"]


def _public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__]


@pytest.mark.parametrize("module_name", PACKAGES + CLI_MODULES + FACES)
def test_every_public_function_and_class_has_an_example(module_name):
    if module_name in FACES:
        pytest.importorskip("cv2")
        pytest.importorskip("dlib")
    missing, values = [], []
    for name, obj in _public(module_name):
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(name)
        else:
            values.append(name)
    assert not missing, f"{module_name}: no '>>>' example in the docstring of {missing}"
    # what is skipped can carry no docstring: constants, never callables
    for name in values:
        assert not callable(dict(_public(module_name))[name]), name


def test_the_cli_modules_have_their_entry_point():
    for module_name in ("detectors.train", "detectors.predict", "detectors.synth"):
        assert "main" in importlib.import_module(module_name).__all__
