"""Lazy re-exports for the package and its layers.

``from mnist_knn.engine import kneighbors`` imports only the module that defines ``kneighbors``, on
first use: ``import mnist_knn`` stays instant, and ``python -m mnist_knn.data.datasets`` runs a module
that its package has not imported before.
"""

import importlib

__all__ = ["exporter"]


def exporter(package, exports):
    """Module-level ``__getattr__``, ``__dir__`` and ``__all__`` for a package re-exporting ``exports``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to list of str
        Module (relative to ``package``, e.g. ``"search"`` or ``"engine.search"``) -> names it exports.

    Examples
    --------
    In a package's ``__init__.py``::

        __getattr__, __dir__, __all__ = exporter(__name__, {"search": ["kneighbors"]})

    The three functions on their own:

    >>> getattr_, dir_, all_ = exporter("mnist_knn.engine", {"search": ["kneighbors_loo", "kneighbors"]})
    >>> all_
    ['kneighbors', 'kneighbors_loo']
    >>> getattr_("kneighbors").__module__  # imports mnist_knn.engine.search on first use
    'mnist_knn.engine.search'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    AttributeError: module 'mnist_knn.engine' has no attribute 'nothing'
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name):
        if name in where:
            module = importlib.import_module(f".{where[name]}", package)
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
