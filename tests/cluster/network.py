"""Hosts on one machine: Linux network namespaces joined by veth links to one bridge.

Each host is a namespace with its own loopback, one interface (``eth0``) and its own addresses
on a private /24. The bridge lives in the machine's namespace with the subnet's ``.1``, so the
test process reaches every host the way another machine on the network would.

Two ways to break the network, as production breaks it:

* ``cut(host)`` takes the bridge side of the host's link down: its packets go nowhere and
  nothing answers, so connections stall rather than fail (a pulled cable, a dead switch port).
* ``blackhole(host, address)`` routes one address from inside a host into a link with nothing
  behind it: that host alone loses that address, silently, while everything else still flows.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PREFIX = "lts"  # every namespace, link and bridge made here starts with it
NOWHERE_MAC = "02:00:00:00:00:01"  # a neighbour that does not exist, for blackholed addresses


def _ip(*args: str, namespace: str | None = None) -> str:
    command = ["ip", *args] if namespace is None else ["ip", "-n", namespace, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


class NetworkError(RuntimeError):
    pass


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"{PREFIX}probe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except NetworkError as error:
        return f"network namespaces cannot be created here ({error})"
    _ip("netns", "delete", probe)
    return None


def remove_leftovers() -> None:
    """Namespaces, bridges and links of earlier runs that were killed before they cleaned up."""
    for name in _ip("netns", "list").split():
        if name.startswith(PREFIX):
            _kill_namespace(name)
            subprocess.run(["ip", "netns", "delete", name], check=False)
    for line in _ip("-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)


def _kill_namespace(namespace: str) -> None:
    pids = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 9)


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-4", "-o", "addr", "show")
    for third in range(200, 255):
        subnet = ipaddress.IPv4Network(f"10.251.{third}.0/24")
        if f"10.251.{third}." not in used:
            return subnet
    raise NetworkError("no free 10.251.x.0/24 subnet")


@dataclass
class Host:
    name: str
    namespace: str
    link: str  # the bridge side of its veth pair
    addresses: list[str]

    @property
    def address(self) -> str:
        return self.addresses[0]


@dataclass
class Network:
    tag: str
    subnet: ipaddress.IPv4Network
    bridge: str
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, hosts: Mapping[str, int]) -> Network:
        """One host per name, with that many addresses each (numbered from .10 up)."""
        tag = uuid.uuid4().hex[:4]
        subnet = _free_subnet()
        network = cls(tag=tag, subnet=subnet, bridge=f"{PREFIX}{tag}br")
        try:
            _ip("link", "add", network.bridge, "type", "bridge")
            _ip("addr", "add", f"{network._address(1)}/24", "dev", network.bridge)
            _ip("link", "set", network.bridge, "up")
            number = 10
            for name, count in hosts.items():
                network._add_host(name, list(range(number, number + count)))
                number += 10
        except BaseException:
            network.destroy()
            raise
        return network

    def _address(self, number: int) -> str:
        return str(self.subnet.network_address + number)

    def _add_host(self, name: str, numbers: list[int]) -> None:
        namespace = f"{PREFIX}{self.tag}-{name}"
        link = f"{PREFIX}{self.tag}h{len(self.hosts)}"  # interface names stop at 15 characters
        _ip("netns", "add", namespace)
        _ip("link", "set", "lo", "up", namespace=namespace)
        _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
        _ip("link", "set", f"{link}p", "netns", namespace)
        _ip("link", "set", f"{link}p", "name", "eth0", namespace=namespace)
        addresses = [self._address(number) for number in numbers]
        for address in addresses:
            _ip("addr", "add", f"{address}/24", "dev", "eth0", namespace=namespace)
        _ip("link", "set", "eth0", "up", namespace=namespace)
        _ip("link", "set", link, "master", self.bridge)
        _ip("link", "set", link, "up")
        self.hosts[name] = Host(name, namespace, link, addresses)

    # --- Running programs on a host ---------------------------------------------------------

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host].namespace, *argv]

    def start(
        self,
        host: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        output: IO[bytes]
        with log.open("ab") as output:
            process = subprocess.Popen(
                self.command(host, argv),
                env=dict(env),
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    # --- Breaking it ------------------------------------------------------------------------

    def cut(self, host: str) -> None:
        _ip("link", "set", self.hosts[host].link, "down")

    def restore(self, host: str) -> None:
        _ip("link", "set", self.hosts[host].link, "up")

    def blackhole(self, host: str, address: str) -> None:
        """From ``host``, packets to ``address`` vanish (nothing answers, nothing refuses)."""
        namespace = self.hosts[host].namespace
        if "void0" not in _ip("-o", "link", "show", namespace=namespace):
            _ip(
                "link", "add", "void0", "type", "veth", "peer", "name", "void1", namespace=namespace
            )
            _ip("link", "set", "void0", "up", namespace=namespace)
            _ip("link", "set", "void1", "up", namespace=namespace)
        _ip("route", "add", f"{address}/32", "dev", "void0", namespace=namespace)
        _ip(
            "neigh",
            "replace",
            address,
            "lladdr",
            NOWHERE_MAC,
            "dev",
            "void0",
            "nud",
            "permanent",
            namespace=namespace,
        )

    def unblackhole(self, host: str, address: str) -> None:
        _ip("route", "delete", f"{address}/32", namespace=self.hosts[host].namespace)

    # --- Tearing down -----------------------------------------------------------------------

    def destroy(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
        for host in self.hosts.values():
            _kill_namespace(host.namespace)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "delete", host.namespace], check=False)
            subprocess.run(["ip", "link", "delete", host.link], check=False, capture_output=True)
        subprocess.run(["ip", "link", "delete", self.bridge], check=False, capture_output=True)
