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


def test_ebpf_names_each_missing_piece_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without clang the ebpf mode (only) is not ready; ``--mode ebpf`` stops with exit 3
    naming it and the fix, before anything is built."""
    from netlab.errors import PrerequisiteError
    from netlab.proxy.ebpf import objects

    monkeypatch.setattr(doctor, "is_root", lambda: False)
    monkeypatch.setattr(objects, "find_clang", lambda: None)
    verdicts = {m.mode: m for m in doctor.diagnose().modes}
    ebpf = verdicts["ebpf"]
    assert not ebpf.ok
    assert "clang and BPF headers missing" in ebpf.reasons
    assert doctor.EBPF_HINTS["clang and BPF headers"] in ebpf.hint
    assert "clang" not in verdicts["iptables"].hint
    checks = {c.name: c for c in doctor.diagnose().checks}
    assert not checks["ebpf: clang and BPF headers"].ok
    assert "clang is not installed" in checks["ebpf: clang and BPF headers"].detail

    monkeypatch.setattr("netlab.kernel.features.ebpf_ready", lambda: [])
    with pytest.raises(PrerequisiteError) as info:
        doctor._require_ebpf()
    assert "clang and BPF headers" in str(info.value)
    assert info.value.hint == doctor.EBPF_HINTS["clang and BPF headers"]
    assert info.value.exit_code == 3


def test_every_ebpf_requirement_has_a_fix() -> None:
    for name in doctor.MODE_FEATURES["ebpf"]:
        if name in {"network namespaces", "veth devices", "bridge devices", "br_netfilter"}:
            continue
        assert doctor.EBPF_HINTS[name]
