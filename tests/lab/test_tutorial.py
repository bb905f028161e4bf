"""The tutorial's generated blocks are what netlab prints today: every command in
docs/tutorial.md and docs/zh/tutorial.md is run as shown, in real labs, and its output compared
(normalised: ports, timings and counters that change from run to run). Regenerate with
``sudo scripts/tutorial --write``. The IPVS blocks run where the kernel has IPVS (the VM here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.host import HostSnapshot
from tests.tooling import tutorial


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", tutorial.FILES, ids=lambda p: str(p.relative_to(tutorial.REPO)))
def test_tutorial_blocks_match_netlab(path: Path, clean_host: HostSnapshot) -> None:
    assert tutorial.host_blocks(path), "the tutorial has no generated blocks"
    problems = tutorial.check([path], vm=False)
    assert problems == [], "\n\n".join(problems)


@pytest.mark.ipvs
@pytest.mark.timeout(2400)
def test_tutorial_ipvs_blocks_match_netlab() -> None:
    """Also the IPVS trace: the virtual server IPVS took the connection in through and the real
    server it chose, beside the iptables rules met (the blocks show them; they must still be
    what netlab prints)."""
    blocks = [b for p in tutorial.FILES for b in tutorial.vm_blocks(p)]
    assert blocks
    for b in blocks:
        text = b.outputs()
        assert "IPVS connections" in text and "-> virtual server 10.107.164.13:80 -> real" in text
        assert "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT" in text
    problems = tutorial.check(tutorial.FILES, vm=True)
    assert problems == [], "\n\n".join(problems)
