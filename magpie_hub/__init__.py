"""magpie-hub: make open alignment data with the Magpie method."""

__version__ = "0.1.0"
