"""A module that cannot be imported: its agent factory fails at import time."""

raise ImportError("hardening_broken_module is broken on purpose (a missing dependency, say)")
