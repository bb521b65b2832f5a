"""Errors of the local service launchers, below opslog's own tree (common.errors)::

    OpslogError
    └── ServiceError          a local service did not start or stop as expected
        └── ServiceNotInstalled   its program is missing; the message says how to install it
"""

from __future__ import annotations

from common.errors import OpslogError


class ServiceError(OpslogError):
    """A local service did not start or stop as expected."""


class ServiceNotInstalled(ServiceError):  # noqa: N818 - named like its siblings in common.errors
    """The program that runs a local service is not installed."""
