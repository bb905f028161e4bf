"""Helpers for netlab's own test suite (the throwaway VM for kernel features the host lacks)."""
