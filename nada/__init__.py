"""Shared, dependency-free pieces of the project: the `nada` command line and the catalog.

Nothing here imports torch, so the API process can use it.
"""

__version__ = "0.1.0"
