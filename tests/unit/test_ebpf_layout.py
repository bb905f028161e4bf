"""The ebpf mode's map layouts: read from the compiled objects' BTF, never restated.

The objects are built (or found in the cache) with clang, which needs no root. The BTF
parser is checked against an independent reader (``bpftool btf dump``); the codecs against
BTF's own offsets, byte orders and bitfields; and the C structs against Cilium's layouts
(cilium/cilium v1.18 ``bpf/lib/common.h``), which the maps must match to be Cilium's maps.
"""

from __future__ import annotations

import itertools
import pathlib
import re
import shutil
import subprocess

import pytest

from netlab.errors import PrerequisiteError
from netlab.proxy.ebpf import btf, entries, layout, objects


@pytest.fixture(scope="module")
def lxc_object() -> str:
    try:
        return objects.object_path("bpf_lxc")
    except PrerequisiteError as exc:
        pytest.skip(f"cannot build the BPF objects here: {exc}")


@pytest.fixture(scope="module")
def parsed(lxc_object: str) -> btf.Btf:
    return btf.read(lxc_object)


@pytest.fixture(scope="module")
def layouts(parsed: btf.Btf) -> dict[str, layout.MapLayout]:
    return layout.map_layouts(parsed)


def test_parser_agrees_with_bpftool(lxc_object: str, parsed: btf.Btf) -> None:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed (scripts/setup installs it)")
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", lxc_object, "format", "raw"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = re.compile(r"^\[(\d+)\] (STRUCT|UNION) '([^']*)' size=(\d+) vlen=(\d+)$")
    member = re.compile(r"^\s+'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?$")
    checked = 0
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = header.match(line)
        if not m:
            continue
        ours = parsed.types[int(m.group(1))]
        name = "" if m.group(3) == "(anon)" else m.group(3)
        assert (ours.name, ours.size, len(ours.members)) == (
            name,
            int(m.group(4)),
            int(m.group(5)),
        )
        for j, mine in enumerate(ours.members):
            mm = member.match(lines[i + 1 + j])
            assert mm is not None, lines[i + 1 + j]
            name = "" if mm.group(1) == "(anon)" else mm.group(1)
            theirs = (name, int(mm.group(2)), int(mm.group(3)), int(mm.group(4) or 0))
            assert (mine.name, mine.type_id, mine.bit_offset, mine.bitfield_size) == theirs
        checked += 1
    assert checked >= 15


def test_maps_are_ciliums(layouts: dict[str, layout.MapLayout]) -> None:
    hash_, lru, lpm = 1, 9, 11
    kinds = {name: lay.map_type for name, lay in layouts.items()}
    assert kinds == {
        entries.SERVICES: hash_,
        entries.BACKENDS: hash_,
        entries.REVNAT: hash_,
        entries.AFFINITY: lru,
        entries.AFFINITY_MATCH: hash_,
        entries.SOURCE_RANGE: lpm,
        entries.CT_TCP: lru,
        entries.CT_ANY: lru,
        entries.SNAT: lru,
        entries.REVERSE_SK: lru,
    }
    # Cilium's key and value sizes (a node's maps must hold what Cilium's hold).
    sizes = {name: (lay.key.size, lay.value.size) for name, lay in layouts.items()}
    assert sizes[entries.SERVICES] == (12, 12)
    assert sizes[entries.BACKENDS] == (4, 12)
    assert sizes[entries.REVNAT] == (2, 6)
    assert sizes[entries.CT_TCP] == sizes[entries.CT_ANY] == (14, 56)
    assert sizes[entries.SNAT] == (14, 40)
    assert sizes[entries.AFFINITY] == (16, 16)
    assert sizes[entries.SOURCE_RANGE][0] == 12


def test_field_offsets_and_byte_orders_come_from_btf(layouts: dict[str, layout.MapLayout]) -> None:
    key = layouts[entries.SERVICES].key
    by_name = {f.name: f for f in key.fields}
    assert [
        (n, by_name[n].offset, by_name[n].size, by_name[n].big_endian)
        for n in ("address", "dport", "backend_slot", "proto", "scope")
    ] == [
        ("address", 0, 4, True),  # __be32
        ("dport", 4, 2, True),  # __be16
        ("backend_slot", 6, 2, False),
        ("proto", 8, 1, False),
        ("scope", 9, 1, False),
    ]
    value = layouts[entries.SERVICES].value
    # The union of slot 0 and the backend slots: three names, one offset.
    assert {
        value.field(n).offset for n in ("backend_id", "affinity_timeout", "l7_lb_proxy_port")
    } == {0}
    # Cilium stores reverse-NAT IDs in network byte order although C says __u16.
    assert value.field("rev_nat_index").big_endian
    assert layouts[entries.REVNAT].key.fields[0].big_endian
    assert layouts[entries.SOURCE_RANGE].key.field("addr").big_endian
    nat = layouts[entries.SNAT].value
    assert nat.field("common.created").offset == 0 and nat.field("to_saddr").offset == 32


def test_encode_decode_roundtrip_with_bitfields(layouts: dict[str, layout.MapLayout]) -> None:
    ct = layouts[entries.CT_TCP].value
    values = {
        "backend_id": 7,
        "packets": 3,
        "bytes": 180,
        "lifetime": 99,
        "rx_closing": 1,
        "seen_non_syn": 1,
        "node_port": 1,
        "rev_nat_index": 0x1234,
        "tx_flags_seen": 0x12,
    }
    raw = ct.encode(values)
    assert len(raw) == 56
    back = ct.decode(raw)
    assert {k: back[k] for k in values} == values
    assert back["tx_closing"] == 0 and back["lb_loopback"] == 0
    # The bitfields share one __u16 after lifetime: rx_closing is bit 0, node_port bit 5.
    flags = ct.field("rx_closing")
    assert int.from_bytes(raw[flags.offset : flags.offset + 2], "little") & 0x3F == 0b110001
    assert (
        raw[ct.field("rev_nat_index").offset : ct.field("rev_nat_index").offset + 2] == b"\x12\x34"
    )
    with pytest.raises(ValueError):
        ct.encode({"node_port": 2})


def test_packer_matches_the_generic_encoder(layouts: dict[str, layout.MapLayout]) -> None:
    key = layouts[entries.SERVICES].key
    pack = key.packer(("address", "dport", "backend_slot", "proto", "scope"))
    addr = 0x0A60000A  # 10.96.0.10
    assert pack(addr, 53, 2, 17, 1) == key.encode(
        {"address": addr, "dport": 53, "backend_slot": 2, "proto": 17, "scope": 1}
    )
    assert pack(addr, 53, 2, 17, 1)[:6] == bytes([10, 96, 0, 10, 0, 53])
    with pytest.raises(ValueError):
        layouts[entries.CT_TCP].value.packer(("rx_closing",))


def test_rodata_configuration_offsets(parsed: btf.Btf) -> None:
    data = parsed.datasec(".rodata")
    assert set(data) >= {"CONFIG_NODE_IPV4", "CONFIG_POD_CIDR_ADDR", "CONFIG_NETNS_COOKIE"}
    spans = sorted(data.values())
    assert all(a[0] + a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert data["CONFIG_NETNS_COOKIE"][1] == 8


def test_sources_changing_changes_the_cache_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    clang = objects.find_clang()
    if clang is None:
        pytest.skip("clang is not installed")
    src = tmp_path / "bpf"
    shutil.copytree(objects.SOURCE_DIR, src)
    monkeypatch.setattr(objects, "SOURCE_DIR", str(src))
    before = objects.cache_key(clang)
    assert objects.cache_key(clang) == before
    (src / "lib" / "common.h").write_text((src / "lib" / "common.h").read_text() + "\n/* x */\n")
    assert objects.cache_key(clang) != before
