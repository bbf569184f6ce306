"""How ``make test`` shares the suite between two workers (pytest-xdist, ``--dist loadgroup``).

Tests that assert how long something takes (a party named within peer_timeout_seconds + 5 s,
a study ended within 2 s of its timeout, an answer "at once", resources after a load) form
one group: one worker runs them one after another, never two of them at once, while the other
worker runs the rest. The tests of one system-test module share the clusters its module-scoped
fixtures start, so each module is a group too: one worker starts its processes once; so are
the tests that use the session's PostgreSQL server.
"""

from __future__ import annotations

import pytest

#: test files (or single tests) whose assertions include a time bound
TIMED = (
    "tests/engines/test_mpc_faults.py",
    "tests/engines/test_mpc_steps_iterative.py",
    "tests/inprocess/test_failures.py",
    "tests/system/test_bad_input.py::test_unreachable_address_fails_fast",
    "tests/system/test_deadlines.py",
    "tests/system/test_failures.py",
    "tests/system/test_load.py",
    "tests/transport/test_grpc.py",
)
#: modules whose tests share processes started once per module
SHARED_PROCESSES = ("tests/system/", "tests/sources/test_node_cluster.py",
                    "tests/adversary/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(TIMED):
            item.add_marker(pytest.mark.xdist_group("timed"))
        elif "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("postgres"))  # one server per session
        elif item.nodeid.startswith(SHARED_PROCESSES):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
