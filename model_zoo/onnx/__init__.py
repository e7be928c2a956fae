"""ONNX reference networks built with onnx.helper from seeded random weights.

Each recipe module has `build_<name>(...) -> onnx.ModelProto` and a CLI:
`python -m model_zoo.onnx.<recipe> -o model.onnx`. Nothing is downloaded;
models above a few MB are generated on demand (tests write them to tmp dirs).
Only the tiny demo model (`tiny_cnn.onnx`) and the trained digits nets
(`digits_mobilenetv2.onnx`, `digits_resnet.onnx` with `digits_heldout.npz`,
`digits_calib/` and `digits_accuracy.json`; recipe: `python -m model_zoo.torch.digits_train`)
are committed.
"""
RECIPES = ("mobilenet_v2", "resnet18", "squeezenet", "tiny_cnn")
