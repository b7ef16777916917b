"""Sphinx configuration of the srhm-datasets documentation (MyST Markdown, MyST-NB, furo).

Build: ``sphinx-build -W --keep-going -n -b html docs docs/_build/html`` (warnings are errors,
every internal reference must resolve). Pages written as MyST notebooks (``docs/tutorials/``,
``docs/guide/data.md``) are executed at build time and cached in ``docs/_build/.jupyter_cache``.
"""

import logging

import srhm_datasets

project = "srhm-datasets"
author = "the srhm-datasets authors"
copyright = "the srhm-datasets authors"
release = srhm_datasets.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
]

exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**.ipynb_checkpoints", "_templates"]
templates_path = ["_templates"]
html_theme = "furo"
html_title = f"srhm-datasets {release}"
html_static_path = []

# MyST: GitHub-style heading anchors so `[text](format.md#8-published-layout-...)` resolves.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

# MyST-NB: execute notebooks when their source changes (jupyter-cache), fail the build on an error.
nb_execution_mode = "cache"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 120
nb_merge_streams = True

# API reference: the public names of `srhm_datasets.__all__` and `srhm_datasets.torch.__all__`.
autosummary_generate = True
autosummary_ignore_module_all = False
# Types come from the numpydoc sections, rendered as text (no cross-reference per word).
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = False

# Nitpicky mode checks references to the documented (public) names. Other libraries have no
# inventory offline, and internal modules (`srhm_datasets.<module>.<name>`) are not documented.
nitpick_ignore_regex = [
    (r"py:.*", r"srhm_datasets\.(?!torch\.)[a-z_]+\..+"),
    (r"py:mod", r"srhm_datasets\.(?!torch$)[a-z_]+"),
    (r"py:.*", r"(numpy|np|torch|datasets|pyarrow|pa|pathlib|os|collections\.abc|typing|click|matplotlib)(\..*)?"),
    # napoleon reads a property docstring "K: ..." as a type named K.
    (r"py:class", r"K"),
    # Internal types that public signatures and Raises sections name (their modules are internal).
    (r"py:.*", r"(Task|TaskBatch|HubUnreachable)"),
    (r"py:.*", r"(Path|ndarray|Tensor|Dataset|Module|IterableDataset|DataLoader|Sampler|Generator|Iterator)"),
]


# Globs that take pages as they are added (more guides, the tutorials): in a checkout where
# none is left for them, an empty glob is not an error. Sphinx gives this warning no type that
# `suppress_warnings` takes, hence a logging filter; any other empty glob still fails the build.
OPEN_GLOBS = ("guide/*", "tutorials/*")


class _OpenGlobs(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        return not any(f"{glob!r} didn't match any documents" in message for glob in OPEN_GLOBS)


logging.getLogger("sphinx.sphinx.directives.other").addFilter(_OpenGlobs())
