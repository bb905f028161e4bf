"""What runs in the lab: the agent serving every pod (echo/netexec)."""
