"""The gates where coding agents stop: ``shipyard hook AGENT`` and ``shipyard init --agent``."""
