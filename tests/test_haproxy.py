"""deploy/haproxy.cfg, run by a real HAProxy in front of two real ``migrantline serve``.

Two nodes (each its own data folder and port, one PostgreSQL database, one secret
key) behind the shipped sample, used as it is: only the listening port and the
server lines are replaced. Round-robin without stickiness sends a caller's hops
to both nodes; the hops still make one coherent session, a complaint filed
through one node is found through the other, and a node killed mid-session is
routed around: the caller's next hop is answered by the node left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import ROOT, Phone
from .http_client import HttpClient
from .test_cli import BIN, env_for, free_port
from .test_complaints import file_report, follow, reference_in

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                      if Path("/usr/sbin/haproxy").exists() else None)
pytestmark = [pytest.mark.postgres_only,
              pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed: "
                                 "apt-get install haproxy (.ci/run does)")]
SAMPLE = ROOT / "deploy" / "haproxy.cfg"
TOKEN = "haproxy-test-token"


def configure(sample: str, port: int, nodes: list[int]) -> str:
    """The sample with this test's ports; everything else as shipped."""
    servers = "".join(f"    server node{i + 1} 127.0.0.1:{p} check\n"
                      for i, p in enumerate(nodes))
    swaps = [(r"bind 127\.0\.0\.1:8080", f"bind 127.0.0.1:{port}"),
             (r"(?m)^    server node1 .*\n    server node2 .*\n", servers)]
    for pattern, replacement in swaps:
        sample, count = re.subn(pattern, replacement, sample)
        assert count, f"deploy/haproxy.cfg no longer has {pattern!r}: update this test"
    return sample


@dataclass
class Balancer(HttpClient):
    """HAProxy's port, and the nodes behind it."""

    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def wait_up(port: int, procs: list[subprocess.Popen[bytes]], what: str) -> None:
    deadline = time.time() + 40
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        for proc in procs:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"{proc.args[0]} did not start: {out[-2000:]}")
        if time.time() > deadline:
            pytest.fail(f"{what} did not answer /healthz in 40 s")
        time.sleep(0.2)


@pytest.fixture
def balancer(tmp_path: Path, database: str) -> Iterator[Balancer]:
    ports = [free_port(), free_port()]
    nodes = [subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--workers", "1"], cwd=ROOT,
        env=env_for(tmp_path / f"node{i + 1}", MIGRANTLINE_DATABASE_URL=database,
                    MIGRANTLINE_WEBHOOK_TOKEN=TOKEN, MIGRANTLINE_PROMPTS_RENDER="off",
                    MIGRANTLINE_TRUSTED_PROXIES="127.0.0.1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        for i, port in enumerate(ports)]
    port = free_port()
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(configure(SAMPLE.read_text(), port, ports))
    check = subprocess.run([str(HAPROXY), "-c", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    haproxy = subprocess.Popen([str(HAPROXY), "-db", "-f", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        for node_port, node in zip(ports, nodes, strict=True):
            wait_up(node_port, [node], "serve")
        wait_up(port, [haproxy], "haproxy")
        time.sleep(2.5)  # both nodes pass HAProxy's first health checks (rise 2, 1 s apart)
        yield Balancer(port, TOKEN, nodes=nodes)
    finally:
        for proc in (haproxy, *nodes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (haproxy, *nodes):
            proc.communicate(timeout=30)


def test_hops_spread_over_both_nodes_make_one_session(balancer: Balancer) -> None:
    """No stickiness: one caller's hops land on both nodes, and the filing still works."""
    phone = Phone(balancer)  # type: ignore[arg-type]  # posts like a Flask test client
    reference = reference_in(file_report(phone))
    assert {"node1", "node2"} <= set(balancer.served_by), balancer.served_by
    # looked up again through the balancer: each hop on either node finds the complaint
    before = len(balancer.served_by)
    status = follow(Phone(balancer, phone.number), reference)  # type: ignore[arg-type]
    assert "Received" in status
    assert {"node1", "node2"} <= set(balancer.served_by[before:])


def test_a_node_killed_mid_session_is_routed_around(balancer: Balancer) -> None:
    """SIGKILL one node mid-walk: the caller's next hops are answered by the other."""
    phone = Phone(balancer)  # type: ignore[arg-type]
    first = phone.dial()
    assert "English" in first
    phone.press("1")  # English: the main menu
    main_menu = phone.hop_text("1")
    killed = balancer.nodes[0]
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    served_from = len(balancer.served_by)
    # hops before HAProxy marks it down are retried on the other node (retries, redispatch)
    for _ in range(6):
        assert phone.hop_text("1") == main_menu
    replies = [phone.press("1") for _ in range(3)]
    assert all(r.startswith(("CON ", "END ")) for r in replies)
    assert set(balancer.served_by[served_from:]) == {"node2"}, balancer.served_by
