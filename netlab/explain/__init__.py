"""What netlab shows a learner about how a Service works, as pure functions.

Nothing here touches the kernel: the explainers read the structures the proxy renderers build
(iptables rule lines, the nftables ``Ruleset``, IPVS's ``IpvsRuleSet``, the userspace portals),
and the parsers read the text the kernel's own tools print (``xtables-monitor --trace``,
``nft monitor trace``, ``conntrack -L``, ``ipvsadm -Lnc``). Switching tracing on and reading
those tools is :mod:`netlab.kernel.tracing`; putting it together for a live lab is
:mod:`netlab.lab.learn`.

- :mod:`.addresses`: which pod, node or Service an address belongs to;
- :mod:`.conntrack`: connection-tracking entries, parsed and named;
- :mod:`.trace` (package): the traced path of one connection;
- :mod:`.rules` (package): every mode's rules, one line each on what it does and why;
- :mod:`.graph`: a cluster drawn in mermaid or dot.
"""
