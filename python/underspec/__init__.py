"""underspec: read the outputs of an ``underspec`` run into pandas, and render its report.

>>> import underspec
>>> run = underspec.load_run("runs/20261129-113912")
>>> run.replicas.groupby(["model", "regime"]).ood_rmse.std()

``python3 -m underspec.report DIR`` writes ``DIR/report.html`` and ``DIR/plots/*.svg``.
"""

__all__ = ["Run", "load_run"]
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so that `python3 -m underspec.report` can say which package is missing.
    if name in __all__:
        from . import load

        return getattr(load, name)
    raise AttributeError(f"module 'underspec' has no attribute {name!r}")
