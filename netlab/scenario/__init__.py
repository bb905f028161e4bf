"""Scenario files: YAML with positions, the Lab document, Kubernetes objects, validation."""

from netlab.scenario.load import load_scenario, parse_scenario
from netlab.scenario.model import Scenario

__all__ = ["Scenario", "load_scenario", "parse_scenario"]
