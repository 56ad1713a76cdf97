"""Helpers for testing groundset and groundset plugins: a mock backend with a queue of canned
outputs and a call history, a context manager that registers a plugin for a while, a throw-away
store, and contract checks a plugin author runs against their own backend, strategy or
validator (the pytest fixtures are in ``groundset.core.pytest_plugin``).

``groundset.core.testing.fake_servers`` holds in-process fake OpenAI-compatible and IBM
watsonx.ai servers for testing remote backends; it is not imported here, so importing this
package (which the pytest plugin does in every test session) starts no server machinery.
"""

from __future__ import annotations

# the kit is one namespace: each module's ``__all__`` is re-exported whole, so a name added there
# is public here too
from groundset.core.testing import contracts, mock
from groundset.core.testing.contracts import *  # noqa: F403
from groundset.core.testing.mock import *  # noqa: F403

__all__ = [*contracts.__all__, *mock.__all__]
