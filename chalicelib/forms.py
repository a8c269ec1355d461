"""``multipart/form-data`` bodies, parsed by the ``multipart`` library with limits.

The parser bounds what a hostile body can cost: a part's header section, the number of headers
in it and the number of parts are capped, so a 560 KB header of 64,000 parameters or 40,000 tiny
parts is refused in a millisecond (the standard library's ``email`` parser spent 10-12 s of CPU
on each). Everything stays in memory: a body is never larger than what API Gateway passes.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass

import multipart

from chalicelib.errors import BadRequest

MAX_HEADER_BYTES = 4096
MAX_HEADERS = 8
MAX_FILENAME = 255


@dataclass(frozen=True)
class FilePart:
    """One file of a multipart body."""

    data: bytes
    filename: str | None


@dataclass(frozen=True)
class Form:
    """A multipart body: its files by field name, and its text fields (the first of each)."""

    files: dict[str, list[FilePart]]
    fields: dict[str, str]


def media_type(content_type: str) -> str:
    """``image/png`` of ``image/png; charset=...``, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def clean_filename(name: str | None) -> str | None:
    """A client's file name without control or format characters, at most 255 characters."""
    if name is None:
        return None
    kept = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return kept[:MAX_FILENAME] or None


def parse_form(content_type: str, body: bytes, *, max_parts: int) -> Form:
    """Parse ``multipart/form-data``; raises 400 ``invalid_multipart`` when it cannot."""
    boundary = multipart.parse_options_header(content_type)[1].get("boundary", "")
    if media_type(content_type) != "multipart/form-data" or not boundary:
        raise BadRequest("send multipart/form-data with a boundary", code="invalid_multipart")
    parser = multipart.MultipartParser(
        io.BytesIO(body),
        boundary,
        content_length=len(body),
        header_limit=MAX_HEADERS,
        headersize_limit=MAX_HEADER_BYTES,
        part_limit=max_parts,
        spool_limit=len(body) + 1,  # never to disk
        memory_limit=len(body) + 1,
    )
    files: dict[str, list[FilePart]] = {}
    fields: dict[str, str] = {}
    try:
        for part in parser:
            if not part.name:
                continue
            if part.filename is not None or part.content_type != "text/plain":
                files.setdefault(part.name, []).append(
                    FilePart(part.raw, clean_filename(part.filename))
                )
            else:
                fields.setdefault(part.name, part.raw.decode("utf-8", errors="replace").strip())
    except multipart.MultipartError as exc:
        raise BadRequest(
            f"the multipart body cannot be parsed: {exc}", code="invalid_multipart"
        ) from exc
    return Form(files=files, fields=fields)
