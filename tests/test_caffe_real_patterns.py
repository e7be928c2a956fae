"""Constructs met in real-world Caffe files (deploy and train_val prototxts from
public model repositories), each as a small net written here, checked against
OpenCV's Caffe importer with the same weights (seeded random weights written
as a caffemodel by `weights.save_random_caffemodel`), or against a numpy
formula of the fork's layer where OpenCV lacks it.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mobconv.errors import ConversionError, UnsupportedOpsError  # noqa: E402
from mobconv.frontends.caffe import load_caffe  # noqa: E402
from mobconv.frontends.caffe.dynamic import declared_input_shapes  # noqa: E402
from mobconv.frontends.caffe.weights import save_random_caffemodel  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402

RTOL = 1e-4


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    return str(path)


def load(prototxt, caffemodel=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_caffe(prototxt, caffemodel, **kw)


def rel_err(a, b):
    return float(np.abs(a - b.reshape(a.shape)).max() / max(np.abs(b).max(), 1e-12))


def ours_vs_opencv(prototxt, caffemodel, feeds, blobs, cv_prototxt=None, writers=None):
    graph = load(prototxt, caffemodel)
    ours = run(graph, feeds)
    net = cv2.dnn.readNetFromCaffe(cv_prototxt or prototxt, caffemodel)
    for name, x in feeds.items():
        net.setInput(x, name)
    # OpenCV resolves names as *layer* names: ask for the last layer writing the blob
    theirs = net.forward([(writers or {}).get(b, b) for b in blobs])
    for b, t in zip(blobs, theirs):
        assert ours[b].size == t.size, (b, ours[b].shape, t.shape)
        assert rel_err(ours[b], t) < RTOL, b
    return graph, ours


def rand(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


BODY = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
"""


def test_train_val_data_layers_by_phase_and_losses_dropped(tmp_path):
    """Two Data layers (TRAIN/TEST) writing the same tops; TEST's crop_size and
    3 mean values give the input shape; Accuracy and SoftmaxWithLoss are dropped
    with a note. (OpenCV refuses the file: it does not apply phases.)"""
    text = """name: "tv"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mirror: true crop_size: 12 mean_file: "m.binaryproto" } data_param { source: "train_lmdb" batch_size: 64 } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 12 mean_value: 104 mean_value: 117 mean_value: 123 } data_param { source: "val_lmdb" batch_size: 50 } }
""" + BODY + """
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
    tv = write(tmp_path, "tv", text)
    deploy = write(tmp_path, "deploy", 'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 12 dim: 12 }\n' + BODY)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(tv, cm)
    with pytest.warns(UserWarning, match="dropped 2 training-only layer"):
        graph = load_caffe(tv, cm)
    assert declared_input_shapes(graph)["data"] == (1, 3, 12, 12) and graph.outputs == ["fc"]
    assert "training-only" in graph.metadata.options["notes"]
    x = {"data": rand((1, 3, 12, 12))}
    ours = run(graph, x)["fc"]
    net = cv2.dnn.readNetFromCaffe(deploy, cm)
    net.setInput(x["data"])
    assert rel_err(ours, net.forward("fc")) < RTOL


@pytest.mark.parametrize("layer, shape", [
    ('type: "MemoryData" top: "data" top: "label" memory_data_param { batch_size: 1 channels: 3 height: 9 width: 10 }',
     (1, 3, 9, 10)),
    ('type: "DummyData" top: "data" dummy_data_param { shape { dim: 1 dim: 2 dim: 8 dim: 8 } }', (1, 2, 8, 8)),
    ('type: "DummyData" top: "data" dummy_data_param { num: 1 channels: 3 height: 7 width: 6 }', (1, 3, 7, 6)),
    ('type: "ImageData" top: "data" top: "label" image_data_param { source: "l.txt" batch_size: 8 new_height: 11 '
     'new_width: 13 is_color: false }', (1, 1, 11, 13)),
    ('type: "ImageData" top: "data" top: "label" transform_param { crop_size: 9 } image_data_param { source: "l.txt" }',
     (1, 3, 9, 9)),
])
def test_data_layers_declaring_their_shape(tmp_path, layer, shape):
    p = write(tmp_path, "n", f'layer {{ name: "data" {layer} }}\n' + BODY)
    graph = load(p, random_weights=True)
    assert declared_input_shapes(graph)["data"] == shape


@pytest.mark.parametrize("layer, hint", [
    ('type: "Python" top: "data" top: "label" python_param { module: "voc_layers" layer: "SegDataLayer" }',
     "Python layer 'data'"),
    ('type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "h.txt" batch_size: 4 }', "HDF5Data layer"),
    ('type: "Data" top: "data" top: "label" transform_param { crop_size: 9 } data_param { source: "db" }',
     "crop_size 9"),
])
def test_data_layers_without_a_shape_say_where_the_input_comes_from(tmp_path, layer, hint):
    p = write(tmp_path, "n", f'layer {{ name: "data" {layer} }}\n' + BODY)
    with pytest.raises(ConversionError, match=hint) as err:
        load(p, random_weights=True)
    assert p in str(err.value) and "--input-shape data=" in str(err.value)
    graph = load(p, random_weights=True, input_shapes={"data": (1, 3, 9, 9)})
    assert graph.outputs == ["fc"]


def test_v1_numeric_type_blobs_lr_input_dim_slice_dim_concat_dim(tmp_path):
    text = """name: "old"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
layers { name: "conv1" type: 4 bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 6 kernel_size: 3 weight_filler { type: "gaussian" std: 0.01 } } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layers { name: "slice" type: SLICE bottom: "pool1" top: "a" top: "b" slice_param { slice_dim: 1 slice_point: 2 } }
layers { name: "cat" type: CONCAT bottom: "b" bottom: "a" top: "cat" concat_param { concat_dim: 1 } }
layers { name: "fc" type: INNER_PRODUCT bottom: "cat" top: "fc" blobs_lr: 1 blobs_lr: 2 inner_product_param { num_output: 7 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
"""
    p = write(tmp_path, "old", text)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    ours_vs_opencv(p, cm, {"data": rand((1, 3, 10, 10))}, ["prob"])


def test_type_spelling_variants_read_as_caffe_types(tmp_path):
    """Hand-edited files: V1 enum names written as strings, case variants.
    (OpenCV refuses these names; compared with the canonical file.)"""
    odd = ('input: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
           'layer { name: "c" type: "CONVOLUTION" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }\n'
           'layer { name: "r" type: "Relu" bottom: "c" top: "c" }\n'
           'layer { name: "p" type: "pooling" bottom: "c" top: "p" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
           'layer { name: "f" type: "INNER_PRODUCT" bottom: "p" top: "f" inner_product_param { num_output: 3 } }\n'
           'layer { name: "s" type: "SoftMax" bottom: "f" top: "s" }\n')
    canon = (odd.replace('"CONVOLUTION"', '"Convolution"').replace('"Relu"', '"ReLU"')
             .replace('"pooling"', '"Pooling"').replace('"INNER_PRODUCT"', '"InnerProduct"')
             .replace('"SoftMax"', '"Softmax"'))
    p, c = write(tmp_path, "odd", odd), write(tmp_path, "canon", canon)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    graph = load(p, cm)
    assert "read as 'Convolution'" in graph.metadata.options["notes"]
    x = rand((1, 3, 8, 8))
    net = cv2.dnn.readNetFromCaffe(c, cm)
    net.setInput(x)
    assert rel_err(run(graph, {"data": x})["s"], net.forward("s")) < RTOL


def test_custom_layer_types_listed_once_exit_2_no_file(tmp_path):
    """SENet's Axpy and any fork's own layer: one line naming every type and layer."""
    p = write(tmp_path, "se", 'input: "data"\ninput_dim: 1 input_dim: 4 input_dim: 5 input_dim: 5\n'
              'layer { name: "gap" type: "Pooling" bottom: "data" top: "gap" pooling_param { pool: AVE global_pooling: true } }\n'
              'layer { name: "sig" type: "Sigmoid" bottom: "gap" top: "gap" }\n'
              'layer { name: "axpy1" type: "Axpy" bottom: "gap" bottom: "data" bottom: "data" top: "y" }\n'
              'layer { name: "axpy2" type: "Axpy" bottom: "gap" bottom: "y" bottom: "data" top: "z" }\n'
              'layer { name: "m" type: "MyFancyNorm" bottom: "z" top: "m" }\n')
    with pytest.raises(UnsupportedOpsError) as err:
        load(p, random_weights=True)
    msg = str(err.value)
    assert "Axpy x2 ('axpy1', 'axpy2')" in msg and "MyFancyNorm x1 ('m')" in msg and p in msg
    out = tmp_path / "se.mob"
    cli = subprocess.run([sys.executable, "-m", "mobconv", "caffe2mob", p, "--random-weights", "-o", str(out)],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and not out.exists()
    assert len(cli.stderr.strip().splitlines()) == 1 and "Axpy" in cli.stderr


def test_input_declared_twice_and_topless_input_layer(tmp_path):
    """A user-edited AgeNet: `input:` + `input_shape` *and* an Input layer with no
    top. Caffe accepts it; OpenCV refuses it (compared without the extra layer)."""
    body = BODY.replace("num_output: 5", "num_output: 8") + \
        'layer { name: "softmax" type: "Softmax" bottom: "fc" top: "fc" }\n'
    head = 'name: "AgeNet"\ninput: "data"\ninput_shape {\n  dim: 1\n  dim: 3 # channels\n  dim: 9\n  dim: 9\n}\n'
    p = write(tmp_path, "age", head + 'layer {\n  name: "data"\n  type: "Input"\n'
              '  input_param { shape: { dim: 1 dim: 3 dim: 9 dim: 9 } }\n}\n' + body)
    cvp = write(tmp_path, "age_cv", head + body)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    graph, _ = ours_vs_opencv(p, cm, {"data": rand((1, 3, 9, 9))}, ["fc"], cv_prototxt=cvp,
                              writers={"fc": "softmax"})
    assert graph.inputs == ["data"]


def test_hed_style_crops_with_one_shared_layer_name_and_deconvolutions(tmp_path):
    """HED deploy: every Crop layer is named 'crop', no crop_param (axis 2,
    offset 0), un-padded Deconvolutions upsampling side outputs; big pad on conv1."""
    text = 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 20\ninput_dim: 20\n'
    text += "layer { bottom: 'data' top: 'c1' name: 'c1' type: \"Convolution\" convolution_param { num_output: 4 pad: 6 kernel_size: 3 } }\n"
    text += "layer { bottom: 'c1' top: 'c1' name: 'r1' type: \"ReLU\" }\n"
    text += "layer { name: 'p1' bottom: 'c1' top: 'p1' type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
    text += "layer { name: 's1' type: \"Convolution\" bottom: 'c1' top: 's1-up' convolution_param { num_output: 1 kernel_size: 1 } }\n"
    text += "layer { type: \"Crop\" name: 'crop' bottom: 's1-up' bottom: 'data' top: 'u1' }\n"
    text += "layer { name: 's2' type: \"Convolution\" bottom: 'p1' top: 's2' convolution_param { num_output: 1 kernel_size: 1 } }\n"
    text += "layer { type: \"Deconvolution\" name: 'up2' bottom: 's2' top: 's2-up' convolution_param { kernel_size: 4 stride: 2 num_output: 1 } }\n"
    text += "layer { type: \"Crop\" name: 'crop' bottom: 's2-up' bottom: 'data' top: 'u2' }\n"
    text += 'layer { name: "cat" bottom: "u1" bottom: "u2" top: "cat" type: "Concat" concat_param { concat_dim: 1 } }\n'
    text += "layer { name: 'fuse' type: \"Convolution\" bottom: 'cat' top: 'fuse' convolution_param { num_output: 1 kernel_size: 1 } }\n"
    text += 'layer { type: "Sigmoid" name: "sig" bottom: "fuse" top: "sig" }\n'
    p = write(tmp_path, "hed", text)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    ours_vs_opencv(p, cm, {"data": rand((1, 3, 20, 20))}, ["sig"])


def test_fcn_style_bias_free_deconvolution_and_crop_offsets(tmp_path):
    text = ('layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }\n'
            'layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 4 pad: 20 kernel_size: 3 } }\n'
            'layer { name: "pool" type: "Pooling" bottom: "c1" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
            'layer { name: "score" type: "Convolution" bottom: "pool" top: "score" convolution_param { num_output: 3 kernel_size: 3 } }\n'
            'layer { name: "up" type: "Deconvolution" bottom: "score" top: "up" param { lr_mult: 0 } '
            'convolution_param { num_output: 3 bias_term: false kernel_size: 4 stride: 2 group: 3 } }\n'
            'layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "out" crop_param { axis: 2 offset: 7 offset: 5 } }\n')
    p = write(tmp_path, "fcn", text)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    ours_vs_opencv(p, cm, {"data": rand((1, 3, 16, 16))}, ["out"], writers={"out": "crop"})


def test_res10_ssd_style_batchnorm_with_three_param_specs_and_default_max_pool(tmp_path):
    """opencv face_detector deploy: BatchNorm + Scale(bias) on the raw input,
    Pooling without `pool:` (MAX), dilated bias-free conv, Normalize."""
    text = ('input: "data"\ninput_shape {\n  dim: 1\n  dim: 3\n  dim: 24\n  dim: 24\n}\n'
            'layer { name: "data_bn" type: "BatchNorm" bottom: "data" top: "data_bn" param { lr_mult: 0.0 } param { lr_mult: 0.0 } param { lr_mult: 0.0 } }\n'
            'layer { name: "data_scale" type: "Scale" bottom: "data_bn" top: "data_bn" scale_param { bias_term: true } }\n'
            'layer { name: "conv1_h" type: "Convolution" bottom: "data_bn" top: "conv1_h" convolution_param { num_output: 8 pad: 3 kernel_size: 7 stride: 2 weight_filler { type: "msra" variance_norm: FAN_OUT } } }\n'
            'layer { name: "conv1_pool" type: "Pooling" bottom: "conv1_h" top: "conv1_pool" pooling_param { kernel_size: 3 stride: 2 } }\n'
            'layer { name: "d" type: "Convolution" bottom: "conv1_pool" top: "d" convolution_param { num_output: 8 bias_term: false pad: 2 kernel_size: 3 dilation: 2 } }\n'
            'layer { name: "norm" type: "Normalize" bottom: "d" top: "norm" norm_param { across_spatial: false scale_filler { type: "constant" value: 20 } channel_shared: false } }\n')
    p = write(tmp_path, "res10", text)
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    ours_vs_opencv(p, cm, {"data": rand((1, 3, 24, 24))}, ["norm"])


def test_pspnet_style_pyramid_pooling_and_interp(tmp_path):
    text = ('input: "data"\ninput_dim: 1\ninput_dim: 4\ninput_dim: 12\ninput_dim: 12\n'
            'layer { name: "p1" type: "Pooling" bottom: "data" top: "p1" pooling_param { pool: AVE kernel_size: 12 stride: 12 } }\n'
            'layer { name: "p1i" type: "Interp" bottom: "p1" top: "p1i" interp_param { height: 12 width: 12 } }\n'
            'layer { name: "p3" type: "Pooling" bottom: "data" top: "p3" pooling_param { pool: AVE kernel_size: 4 stride: 4 } }\n'
            'layer { name: "p3i" type: "Interp" bottom: "p3" top: "p3i" interp_param { height: 12 width: 12 } }\n'
            'layer { name: "cat" type: "Concat" bottom: "data" bottom: "p1i" bottom: "p3i" top: "cat" }\n'
            'layer { name: "z" type: "Interp" bottom: "cat" top: "z" interp_param { zoom_factor: 2 } }\n'
            'layer { name: "s" type: "Interp" bottom: "cat" top: "s" interp_param { shrink_factor: 3 } }\n')
    p = write(tmp_path, "psp", text)
    cvp = write(tmp_path, "psp_cv", "\n".join(line for line in text.splitlines() if '"s"' not in line))
    cm = str(tmp_path / "w.caffemodel")
    save_random_caffemodel(p, cm)
    x = rand((1, 4, 12, 12))
    graph, ours = ours_vs_opencv(p, cm, {"data": x}, ["z"], cv_prototxt=cvp)
    ours = run(graph, {"data": x}, keep_intermediates=True)
    # OpenCV gets shrink_factor alone wrong (0x0 output); Caffe's Interp: size
    # (12 - 1) // 3 + 1 = 4, bilinear with aligned corners, checked by hand.
    pos = np.arange(4) * 11 / 3
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, 11)
    f = (pos - lo).astype(np.float32)
    cat = ours["cat"]
    rows = cat[:, :, lo] * (1 - f)[:, None] + cat[:, :, hi] * f[:, None]
    want = rows[..., lo] * (1 - f) + rows[..., hi] * f
    np.testing.assert_allclose(ours["s"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("param, eps", [
    ("bn_param { slope_filler { type: \"constant\" value: 1 } frozen: true }", 1e-5),  # yjxiong/caffe
    ("bn_param { scale_filler { type: \"constant\" value: 1 } moving_average: true decay: 0.05 }", 1e-9),  # PSPNet
    ("bn_param { moving_average: true var_eps: 0.001 }", 1e-3),
])
def test_fork_bn_layer_against_its_formula(tmp_path, param, eps):
    """OpenCV has no "BN": y = scale * (x - mean) / sqrt(var + eps) + shift,
    blobs (1, C, 1, 1) as the forks store them (PSPNet bn_layer.cpp, TEST phase)."""
    p = write(tmp_path, "bn", 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 4\ninput_dim: 5\n'
              f'layer {{ name: "bn" type: "BN" bottom: "data" top: "data" {param} }}\n')
    rng = np.random.default_rng(3)
    blobs = [rng.uniform(0.5, 2, (1, 3, 1, 1)).astype(np.float32), rng.standard_normal((1, 3, 1, 1)).astype(np.float32),
             rng.standard_normal((1, 3, 1, 1)).astype(np.float32), rng.uniform(0.5, 2, (1, 3, 1, 1)).astype(np.float32)]
    from mobconv.frontends.caffe.weights import write_caffemodel
    cm = str(tmp_path / "bn.caffemodel")
    write_caffemodel(cm, "bn", [("bn", "BN", blobs)])
    x = rand((1, 3, 4, 5))
    graph = load(p, cm)
    got = run(graph, {"data": x})[graph.outputs[0]]
    s, b, m, v = blobs
    want = s * (x - m) / np.sqrt(v + np.float32(eps)) + b
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pspnet_bn_without_moving_average_uses_batch_statistics(tmp_path):
    p = write(tmp_path, "bn", 'input: "data"\ninput_dim: 2\ninput_dim: 3\ninput_dim: 4\ninput_dim: 5\n'
              'layer { name: "bn" type: "BN" bottom: "data" top: "y" bn_param { var_eps: 0.01 } }\n')
    graph = load(p, random_weights=True)
    x = rand((2, 3, 4, 5))
    got = run(graph, {"data": x})["y"]
    s = graph.values["bn/scale"].data.reshape(1, 3, 1, 1)
    b = graph.values["bn/shift"].data.reshape(1, 3, 1, 1)
    m, v = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(got, s * (x - m) / np.sqrt(v + 0.01) + b, rtol=1e-4, atol=1e-5)
