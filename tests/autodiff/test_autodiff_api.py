"""The public surface: curated __all__, a *_with_value twin for every operation, docstrings."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import rotalumis.autodiff as ad

OPERATIONS = [
    "diff",
    "diff2",
    "diffn",
    "grad",
    "gradv",
    "hessian",
    "hvp",
    "grad_and_hessian",
    "laplacian",
    "jacobian",
    "jacobian_transpose",
    "jvp",
    "vjp",
    "curl",
    "div",
    "curl_and_div",
]
MODULES = ["", "._guard", ".gradient", ".hessian", ".jacobian", ".products", ".scalar"]
MODULES += [".vector_calculus"]


def test_all_is_exported_and_sorted():
    assert sorted(ad.__all__) == ad.__all__
    for name in ad.__all__:
        assert hasattr(ad, name), name
    for op in OPERATIONS:
        assert op in ad.__all__ and f"{op}_with_value" in ad.__all__
    assert "pullback" in ad.__all__ and "Pullback" in ad.__all__


@pytest.mark.parametrize("name", [n for n in ad.__all__ if not n.endswith("Error")])
def test_public_objects_have_docstrings_with_examples(name):
    doc = inspect.getdoc(getattr(ad, name)) or ""
    assert doc, name
    assert "Example:" in doc, name


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module("rotalumis.autodiff" + module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_autodiff_imports_only_torch_and_core_errors():
    import pathlib

    root = pathlib.Path(ad.__file__).parent
    for path in root.glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import rotalumis", "from rotalumis")):
                target = stripped.split()[1]
                assert target.startswith(("rotalumis.autodiff", "rotalumis.core.errors")), (
                    f"{path.name}: {stripped}"
                )
