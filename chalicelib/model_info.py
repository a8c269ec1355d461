"""The model's name and version, read from its manifest without loading the network (so the
API function, which never classifies, does not import ONNX Runtime)."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.contract import Model


def read_model_info(model_dir: Path) -> Model:
    """The model's name and version from ``manifest.json``."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return Model(name=manifest["name"], version=manifest["version"])
