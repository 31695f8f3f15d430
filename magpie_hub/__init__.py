"""magpie-hub: make open alignment data with the Magpie method."""

__version__ = "0.2.0"

import warnings as _warnings

# distilabel 1.5.3 declares Field(default=None) on a union member; pydantic warns at import.
_warnings.filterwarnings("ignore", message="The 'default' attribute with value None")

from magpie_hub import deferred_imports as _deferred_imports  # noqa: E402,F401  (before distilabel)
