"""A PostgreSQL and a RabbitMQ of the cluster's own, started on its database host.

They are new instances in a scratch directory, bound to the host's addresses only: the
machine's shared services on 127.0.0.1 are never involved.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.cluster.network import Network

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_COOKIE = Path("/var/lib/rabbitmq/.erlang.cookie")
# RabbitMQ closes a connection after about two missed heartbeats: with 4 s a cut-off task
# handler's unacknowledged (acks_late) messages go back to the queue within about 8 s.
BROKER_HEARTBEAT_SECONDS = 4


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("PostgreSQL's server programs (initdb) are not installed")
    return versions[-1].parent


def unavailable_reason() -> str | None:
    try:
        _postgres_bin()
    except RuntimeError as error:
        return str(error)
    if not RABBITMQ_SERVER.exists():
        return f"RabbitMQ is not installed ({RABBITMQ_SERVER} is missing)"
    return None


def wait_for_port(address: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not listen on {address}:{port} within {timeout:g} s")


def start_postgres(network: Network, host: str, address: str, directory: Path) -> None:
    """initdb and start a PostgreSQL server as the ``postgres`` user, listening on ``address``."""
    binaries = _postgres_bin()
    data = directory / "pgdata"
    directory.mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam("postgres")
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    # Trust the cluster's own subnet, as the machine's server trusts loopback.
    with (data / "pg_hba.conf").open("a") as rules:
        rules.write("host all all samenet trust\n")
    network.start(
        host,
        [
            *as_postgres,
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-c",
            f"listen_addresses={address}",
            "-c",
            "port=5432",
            "-c",
            f"unix_socket_directories={directory}",
            "-c",
            "max_connections=200",
        ],
        log=directory / "postgres.log",
        env={"PATH": os.environ["PATH"]},
    )
    wait_for_port(address, 5432, 30, "PostgreSQL")


def start_rabbitmq(network: Network, host: str, address: str, directory: Path) -> None:
    """A RabbitMQ node of its own (own epmd, cookie and data) listening on ``address``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {address}:5672\n"
        "loopback_users = none\n"
        f"heartbeat = {BROKER_HEARTBEAT_SECONDS}\n"
    )
    (directory / "rabbitmq-env.conf").write_text("")
    (directory / "enabled_plugins").write_text("[].\n")
    cookie = directory / ".erlang.cookie"
    shutil.copyfile(RABBITMQ_COOKIE, cookie)
    cookie.chmod(0o400)
    network.start(
        host,
        [str(RABBITMQ_SERVER)],
        log=directory / "rabbitmq.log",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(directory),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": "rabbit@localhost",
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        },
    )
    wait_for_port(address, 5672, 60, "RabbitMQ")
