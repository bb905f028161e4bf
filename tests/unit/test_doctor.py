"""The doctor's per-mode verdicts: each mode names only its own missing pieces and fixes."""

from __future__ import annotations

import shutil

import pytest

from netlab.lab import doctor


@pytest.fixture
def host_without_nft(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda tool: None if tool in {"nft", "ipset"} else real_which(tool)
    )
    monkeypatch.setattr(doctor, "is_root", lambda: False)


def test_each_mode_gets_only_its_own_fix(host_without_nft: None) -> None:
    verdicts = {m.mode: m for m in doctor.diagnose().modes}
    nft = verdicts["nftables"]
    assert not nft.ok
    assert "nft not found" in nft.reasons
    assert f"{doctor.APT} nftables" in nft.hint
    assert "ipset" not in nft.hint
    assert doctor.IPVS_HINT not in nft.hint
    assert verdicts["ipvs"].hint == doctor.IPVS_HINT
    assert "nft not found" not in verdicts["iptables"].reasons
    assert "ipset not found" not in verdicts["iptables"].reasons
