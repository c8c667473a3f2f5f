"""Shipyard: make coding agents ship working software.

Importing the package has no side effects; heavy parts (browser, HTTP client) load lazily.
"""

__version__ = "0.1.0"
