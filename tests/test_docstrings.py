"""The public names' docstrings (format.md §9): each has an Examples section, and every example runs."""

import doctest
import inspect

import pytest

import srhm_datasets
import srhm_datasets.torch


def public_objects() -> dict[str, object]:
    """Every public name of the package root and of ``srhm_datasets.torch`` that can carry a
    docstring (functions and classes; not ``__version__`` or a constant)."""
    found = {}
    for module in (srhm_datasets, srhm_datasets.torch):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found[f"{module.__name__}.{name}"] = obj
    return found


PUBLIC = public_objects()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_a_numpydoc_docstring_with_examples(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    for section in ("Examples\n--------", ">>> "):
        assert section in doc, f"{name}: no {section.splitlines()[0]!r} in its docstring"
    if inspect.isfunction(PUBLIC[name]):
        assert "Returns\n-------" in doc or "Yields\n------" in doc, name


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes relative paths writes here
    finder = doctest.DocTestFinder(recurse=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(PUBLIC[name], name) if t.examples]
    assert tests, name
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (output above)"
