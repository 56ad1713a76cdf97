"""Built-in backends of groundset, each a default plugin that uses only the public API."""
