"""Every mode's state for one Service on one node, rule by rule (or object by object), each with
one line on what it does and why kube-proxy writes it, in English or Simplified Chinese.

The explainers read the structures the renderers build (:mod:`netlab.proxy`), never a scenario:
a rule is recognised by its shape (its chain, matches, comment and target), the way a reader of
``iptables-save`` recognises it, and the sentence is filled in from the rule itself.

- :mod:`.model`: the explanation (sections of explained items) and its text;
- :mod:`.lang`: the languages and how a sentence is picked;
- :mod:`.xtables`: iptables rules (iptables mode, and the iptables side of IPVS and userspace);
- :mod:`.iptables`, :mod:`.nftables`, :mod:`.ipvs`, :mod:`.userspace`: one per mode.
"""
