"""Quantise the fp32 EfficientNet-Lite0 to int8, statically (QDQ, per-channel weights).

Run by ``make quantize-model`` in an export-only environment (``onnx`` and ONNX Runtime's
quantiser are export-time tools, never run-time dependencies), after ``model/calibrate.py`` has
written the calibration tensors. Static, because dynamic quantisation re-measures activations at
every run and is slower than fp32 for a CNN; QDQ, so ONNX Runtime fuses each
dequantise-conv-quantise into an int8 kernel; per-channel weights, because depthwise convolutions
have channels with very different ranges.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent


class Tensors(CalibrationDataReader):  # type: ignore[misc]
    """Feeds the calibration tensors one at a time."""

    def __init__(self, tensors: np.ndarray, input_name: str) -> None:
        self._items = iter([{input_name: t[None]} for t in tensors])

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next input, or None when done."""
        return next(self._items, None)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Write build/efficientnet_lite0_int8.onnx and print its size and hash."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calibration", type=Path, default=Path("build/calibration.npy"))
    parser.add_argument("--source", type=Path, default=HERE / "efficientnet_lite0.onnx")
    parser.add_argument("--out", type=Path, default=Path("build/efficientnet_lite0_int8.onnx"))
    args = parser.parse_args()
    tensors = np.load(args.calibration)
    prepared = args.calibration.parent / "efficientnet_lite0_prepared.onnx"
    # ONNX shape inference and graph folding (every shape is static but the batch size).
    quant_pre_process(str(args.source), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    quantize_static(
        str(prepared),
        str(args.out),
        Tensors(tensors, "input"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        # The softmax stays fp32: quantised, its probabilities come in steps of 1/255 and ties
        # between near-equal classes decide the top-1.
        nodes_to_exclude=[node.name for node in graph.node if node.op_type == "Softmax"],
    )
    print(f"{args.out.name}: {args.out.stat().st_size} bytes sha256={sha256(args.out)}")
    print(f"calibrated on {len(tensors)} tensors from {args.calibration}")


if __name__ == "__main__":
    main()
