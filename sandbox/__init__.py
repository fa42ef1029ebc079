"""Seatwarden's sandbox: the Atlassian Admin API, Entra's token endpoint and Microsoft
Graph, served over real HTTP on loopback from a seeded simulated org.

Public face::

    from sandbox import Sandbox, SandboxConfig

    with Sandbox.start(SandboxConfig(users=200, seed=7)) as sb:
        ...  # sb.atlassian_base, sb.graph_base, sb.authority_host, sb.advance(days=1), …

See ``sandbox/README.md`` for the endpoints, the org file format and the controls.
"""

from .activity import AdvanceResult
from .events import Delivery
from .faults import FAULT_KINDS
from .generator import DEFAULT_PRODUCTS
from .graph_mail import Mail
from .model import Change
from .org import Org
from .ratelimit import DEFAULT_PER_MINUTE, ENDPOINT_CLASSES
from .runtime import Sandbox, SandboxConfig

__all__ = [
    "DEFAULT_PER_MINUTE",
    "DEFAULT_PRODUCTS",
    "ENDPOINT_CLASSES",
    "FAULT_KINDS",
    "AdvanceResult",
    "Change",
    "Delivery",
    "Mail",
    "Org",
    "Sandbox",
    "SandboxConfig",
]
