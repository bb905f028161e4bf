"""Where labs keep their state, in a module light enough for shell completion to read."""

STATE_ROOT = "/run/netlab"  # one directory per lab, holding its state file (state.json)
STATE_FILE = "state.json"
