"""The one seam through which development tools reach a running node (none in production).

An installed distribution may register objects under the entry-point group
``securecalc.devhooks``; each must have the two methods of :class:`DevHooks`. securecalc
itself registers none. The development package ``securecalc-bench`` (``benchmarks/``)
registers the emulated WAN latency of ``securecalc bench`` and the system tests. With no
such package installed both hooks are empty: no interceptor, no delay.

The hooks are asked each time a server is made (:func:`server_interceptors`) and each time an
MPC session starts (:func:`outgoing_frame_delay`); the registered objects are loaded once.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import grpc

_LOG = logging.getLogger(__name__)

#: entry-point group of development hooks
GROUP = "securecalc.devhooks"


class DevHooks(Protocol):
    """What a registered development hook provides."""

    def server_interceptors(self) -> list[grpc.ServerInterceptor]:
        """Interceptors for a server being made now."""

    def frame_delay(self) -> float:
        """Seconds by which an MPC session delays every frame it sends to a peer."""


@functools.cache
def installed() -> tuple[DevHooks, ...]:
    """The registered hooks of this environment (loaded once per process)."""
    hooks = []
    for entry in entry_points(group=GROUP):
        _LOG.info("development hooks %s loaded from %s", entry.value,
                  entry.dist.name if entry.dist else "an unnamed distribution")
        hooks.append(entry.load())
    return tuple(hooks)


def server_interceptors() -> list[grpc.ServerInterceptor]:
    """Every registered hook's interceptors for a new server (none without hooks)."""
    return [i for hooks in installed() for i in hooks.server_interceptors()]


def outgoing_frame_delay() -> float:
    """Seconds to delay each outgoing MPC frame (0 without hooks)."""
    return sum((hooks.frame_delay() for hooks in installed()), 0.0)


__all__ = ["GROUP", "DevHooks", "installed", "outgoing_frame_delay", "server_interceptors"]
