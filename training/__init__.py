"""Training code for groundset's own models (not part of the installed package)."""
