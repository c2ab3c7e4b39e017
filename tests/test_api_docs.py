"""Every public function and class carries a runnable example in its docstring (run by the
doctest collection of fairaudit/ and detectors/), so that the examples cannot rot."""

import inspect

import fairaudit
import fairaudit.plots


def _public(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj


def test_every_public_function_and_class_has_an_example():
    missing = [
        name
        for mod in (fairaudit, fairaudit.plots)
        for name, obj in _public(mod)
        if ">>>" not in (inspect.getdoc(obj) or "")
    ]
    assert not missing, f"no docstring example: {missing}"


def test_the_public_names_resolve():
    for name in fairaudit.__all__:
        assert hasattr(fairaudit, name), name
