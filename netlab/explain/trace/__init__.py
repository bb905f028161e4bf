"""The traced path of one connection, from what the kernel reported (pure).

- :mod:`.events`: the lines of ``xtables-monitor --trace`` and ``nft monitor trace``, parsed into
  hook passes (one packet crossing one base chain) with the rules it met;
- :mod:`.select`: which flows to switch tracing on for, as iptables TRACE rules or an nft table;
- :mod:`.ipvs`: IPVS's connection table (``ipvsadm -Lnc``);
- :mod:`.report`: passes, conntrack entries and the connection's outcome put together;
- :mod:`.tree`: the report as a tree of lines, for a terminal or plain text.
"""
