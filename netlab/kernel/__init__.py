"""The only layer that changes kernel state: namespaces, links, sysctls, rules, processes."""
