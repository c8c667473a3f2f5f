"""The local dashboard: ``shipyard serve``."""
