"""A client's broken metadata never floods the logs."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.runtime import ROOT


def jpeg_with_bogus_exif(tags: int = 4000) -> bytes:
    """A small JPEG whose EXIF block holds ``tags`` entries pointing past the end of the file."""
    entries = b"".join(
        struct.pack("<HHII", 0x9000 + i, 7, 100_000, 0x7FFF0000) for i in range(tags)
    )
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", tags) + entries + b"\0\0\0\0"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


def test_an_image_with_thousands_of_bogus_exif_tags_decodes_without_a_line_of_output(
    tmp_path: Path,
) -> None:
    # GIVEN a JPEG whose EXIF block has 4,000 tags Pillow cannot read
    photo = tmp_path / "bogus.jpg"
    photo.write_bytes(jpeg_with_bogus_exif())
    code = (
        "import sys; from chalicelib.images import inspect, to_model_input; "
        f"data = open({str(photo)!r}, 'rb').read(); "
        "inspect(data, max_bytes=10**7, max_pixels=10**8); "
        "print(to_model_input(data, max_pixels=10**8).shape)"
    )
    # WHEN the door checks it and the classifier decodes it, in a fresh interpreter (as Lambda)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    # THEN it decodes, and nothing reaches stderr (the log); before, 8,000 lines did
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(3, 224, 224)"
    assert done.stderr == ""
