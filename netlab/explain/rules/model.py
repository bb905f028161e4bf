"""An explanation: sections of items, each item a rule (or map entry, virtual server...) as the
mode writes it and one line on what it does and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    where: str  # "nat KUBE-SERVICES", "map service-ips", "ipset KUBE-CLUSTER-IP"
    text: str  # the rule or object as the mode writes it
    why: str  # one line: what it does and why kube-proxy writes it


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Explanation:
    service: str  # namespace/name
    node: str
    mode: str
    lang: str
    title: str
    sections: list[Section] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Plain text: the title, then per section its items, each rule then its meaning."""
        out = [self.title]
        for s in self.sections:
            if not s.items:
                continue
            out += ["", s.title]
            for item in s.items:
                out.append(f"  [{item.where}] {item.text}")
                out.append(f"      -> {item.why}")
        return out
