"""Clients: socket probes and scapy captures, run inside namespaces."""
