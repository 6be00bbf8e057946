"""Which httpx a client or response comes from: httpx itself, or httpx2 (pydantic's fork).

The openai (3.x), anthropic (2.x) and google-genai (3.x) SDKs are built on httpx2 (anthropic
refuses an httpx client; openai 3.57 and google-genai 3.6 take either); older code passes an
httpx one. The two packages have the same API under
different names, and neither's classes are instances of the other's, so the hook asks each
object's class which package it belongs to (walking the MRO, so subclasses such as an SDK's
own client count) and takes that package's base classes from ``sys.modules``: httpx2 is never
imported here, only used when the app already holds one of its objects.
"""

from __future__ import annotations

import sys
from types import ModuleType

#: The packages whose clients instrument() accepts (same API, separate namespaces).
PACKAGES = ("httpx", "httpx2")


def package_of(obj: object, *class_names: str) -> str | None:
    """"httpx" or "httpx2" when ``obj`` is an instance of one of their classes named in
    ``class_names`` (or of a subclass of one), else None."""
    for cls in type(obj).__mro__:
        root = (cls.__module__ or "").partition(".")[0]
        if root in PACKAGES and cls.__name__ in class_names:
            return root
    return None


def module(package: str) -> ModuleType:
    """The imported package: the app made an object of it, so it is in sys.modules."""
    found = sys.modules.get(package)
    if found is None:  # pragma: no cover - only reachable if someone deleted it from sys.modules
        raise RuntimeError(f"{package} is not imported")
    return found


def client_kind(client: object) -> tuple[str, bool] | None:
    """(package, is_async) of an httpx / httpx2 Client or AsyncClient, else None."""
    package = package_of(client, "AsyncClient")
    if package is not None:
        return package, True
    package = package_of(client, "Client")
    return None if package is None else (package, False)
