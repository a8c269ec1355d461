"""The model's name and version, read from its manifest without loading the network (so the
API function, which never classifies, does not import ONNX Runtime)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chalicelib.contract import Model


def read_model_info(model_dir: Path) -> Model:
    """The model's name and version from ``manifest.json``."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return Model(name=manifest["name"], version=manifest["version"])


def answers_version(model_dir: Path) -> str:
    """What a job's answer depends on besides the image and its options: the model's name and
    version, and the categories file's digest (a new categories file changes every answer)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    digest = hashlib.sha256((model_dir / manifest["categories"]).read_bytes()).hexdigest()
    return f"{manifest['name']}#{manifest['version']}#{digest[:12]}"
