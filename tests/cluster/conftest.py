from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cluster import network, services
from tests.cluster.cluster import Cluster, build_cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    reason = network.unavailable_reason() or services.unavailable_reason()
    if reason:
        pytest.skip(f"The multi-host test needs its own hosts and servers: {reason}")
    built = build_cluster()
    failed_before = request.session.testsfailed
    try:
        yield built
    finally:
        built.destroy()
        if request.session.testsfailed == failed_before:
            shutil.rmtree(built.directory, ignore_errors=True)
        else:
            print(f"\nThe cluster's logs are kept in {built.directory}")
