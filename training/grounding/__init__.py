"""Choosing and measuring grounding_nli's document-level settings on ../shared/data/grounding."""
