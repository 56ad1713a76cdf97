"""Built-in document loaders: JSON Lines records, and plain text or Markdown files (one file or a
folder of them). Errors name the file and line, because users fix input by opening the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from groundset.core import Document, InputError, Loader, Register, hookimpl, json_lines

__all__ = ["JsonlLoader", "TextLoader"]


@dataclass(frozen=True)
class JsonlOptions:
    text_field: str = "text"
    title_field: str = "title"


class JsonlLoader(Loader):
    """One JSON object per line; the text field is required, the title optional, and every
    other key is kept as document metadata."""

    loader_id = "jsonl"
    suffixes = (".jsonl", ".ndjson")
    description = "JSON Lines, one document per line: {'text': ..., 'title': ...}"
    Options = JsonlOptions

    def load(self, path: Path) -> Iterator[Document]:
        try:
            handle = path.open("rb")
        except OSError as error:
            raise InputError(f"cannot read documents file {path}: {error.strerror}") from None
        with handle:
            for number, record, problem in json_lines(handle):
                if problem is not None:  # a documents file is all or nothing
                    raise InputError(f"{path}:{number}: {problem}")
                assert record is not None
                yield self._document(path, number, record)

    def _document(self, path: Path, number: int, record: dict) -> Document:
        where = f"{path}:{number}"
        text = record.get(self.options.text_field)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: missing or empty text field {self.options.text_field!r}")
        title = record.get(self.options.title_field)
        own = (self.options.text_field, self.options.title_field)
        metadata = {k: v for k, v in record.items() if k not in own}
        return Document(
            text=text.strip(),
            title=str(title).strip() if title else None,
            source=where,
            metadata=metadata,
        )


class TextLoader(Loader):
    """A ``.txt`` or ``.md`` file is one document; a folder loads its files in name order."""

    loader_id = "text"
    suffixes = (".txt", ".md", ".markdown")
    description = "Plain text or Markdown: one file per document, or a folder of them"

    def load(self, path: Path) -> Iterator[Document]:
        files = (
            sorted(p for p in path.rglob("*") if p.suffix.lower() in self.suffixes)
            if path.is_dir()
            else [path]
        )
        for file in files:
            try:
                text = file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"cannot read document {file}: {error}") from None
            if text:
                yield Document(text=text, source=str(file))


@hookimpl
def register_loaders(register: Register) -> None:
    register(JsonlLoader)
    register(TextLoader)
