"""quantize/data.py: every calibration source becomes checked feed dicts; every bad
input is a one-line CalibrationDataError naming the sample, the input and the rule."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mobconv
from mobconv.errors import ArgumentError, MobconvError
from mobconv.quantize.data import CalibrationDataError, calibration_feeds

from PIL import Image

TINY = os.path.join(os.path.dirname(__file__), "..", "model_zoo", "onnx", "tiny_cnn.onnx")


@pytest.fixture(scope="module")
def tiny():
    """Single input 'input' [N, 3, 32, 32] float32 (symbolic batch)."""
    return mobconv.convert(TINY)


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """Inputs x [1, 4] and y [1, 4] (fixed batch 1), output x + y."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])])
    path = tmp_path_factory.mktemp("two") / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return mobconv.convert(str(path))


def caffe_model(tmp_path, channels, transform="", hw=(6, 5)):
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(
        f'layer {{ name: "data" type: "Input" top: "data" {transform} '
        f'input_param {{ shape {{ dim: 1 dim: {channels} dim: {hw[0]} dim: {hw[1]} }} }} }}\n'
        'layer { name: "prob" type: "Softmax" bottom: "data" top: "prob" }\n')
    return mobconv.convert(str(proto))


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def error_of(data_or_fn) -> CalibrationDataError:
    with pytest.raises(CalibrationDataError) as info:
        list(data_or_fn() if callable(data_or_fn) else data_or_fn)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return info.value


# ---- sources ------------------------------------------------------------------


def test_list_of_feed_dicts_is_reiterable_with_a_total(tiny):
    feeds = [{"input": rand((2, 3, 32, 32), i)} for i in range(3)]
    data = calibration_feeds(feeds, tiny)
    assert data.total == 3 and data.reiterable
    for _ in range(2):
        got = list(data)
        assert len(got) == 3
        for g, f in zip(got, feeds):
            np.testing.assert_array_equal(g["input"], f["input"])
            assert g["input"].dtype == np.float32


def test_float64_is_cast_and_bare_arrays_feed_a_single_input_model(tiny):
    x = rand((1, 3, 32, 32)).astype(np.float64)
    (got,) = list(calibration_feeds([x], tiny))
    assert got["input"].dtype == np.float32
    np.testing.assert_array_equal(got["input"], x.astype(np.float32))


def test_generator_is_read_once_and_a_second_pass_says_why(tiny):
    data = calibration_feeds(({"input": rand((1, 3, 32, 32), i)} for i in range(2)), tiny)
    assert data.total is None and not data.reiterable
    assert len(list(data)) == 2
    err = error_of(data)
    assert "can be read only once" in str(err) and "rewind()" in str(err)


def test_num_samples_limits_every_source(tiny, tmp_path):
    feeds = [{"input": rand((1, 3, 32, 32), i)} for i in range(5)]
    data = calibration_feeds(feeds, tiny, num_samples=2)
    assert data.total == 2 and len(list(data)) == 2 and data.samples_seen == 2
    np.save(tmp_path / "a.npy", rand((7, 3, 32, 32)))
    data = calibration_feeds(tmp_path, tiny, num_samples=4)
    assert data.total == 4 and len(list(data)) == 4
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ArgumentError, match="num_samples must be a positive integer"):
            calibration_feeds(feeds, tiny, num_samples=bad)


def test_onnxruntime_calibration_data_reader(tiny):
    """A real onnxruntime CalibrationDataReader subclass, with and without rewind()."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = [{"input": rand((1, 3, 32, 32), i)} for i in range(3)]
            self.it = iter(self.items)
            self.rewinds = 0

        def get_next(self):
            return next(self.it, None)

    class RewindingReader(Reader):
        def rewind(self):
            self.it = iter(self.items)
            self.rewinds += 1

    reader = Reader()
    data = calibration_feeds(reader, tiny)
    assert data.describe() == "reader Reader" and data.total is None  # its __len__ raises
    got = list(data)
    assert len(got) == 3
    np.testing.assert_array_equal(got[2]["input"], reader.items[2]["input"])
    assert "can be read only once" in str(error_of(data))

    reader = RewindingReader()
    data = calibration_feeds(reader, tiny)
    assert data.reiterable
    assert len(list(data)) == 3 and len(list(data)) == 3 and reader.rewinds == 1


def test_npy_directory_sorted_split_into_rows_and_recursive(tiny, tmp_path):
    a, b, c = rand((3, 3, 32, 32), 1), rand((1, 3, 32, 32), 2), rand((3, 32, 32), 3)
    np.save(tmp_path / "b.npy", b)  # written first, read second
    np.save(tmp_path / "a.npy", a)  # three samples with a leading batch axis
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "c.npy", c)  # no batch axis: one sample
    (tmp_path / "labels.txt").write_text("not data")  # ignored
    data = calibration_feeds(str(tmp_path), tiny)
    assert data.total == 5  # from the .npy headers, before reading anything
    got = [f["input"] for f in data]
    want = [a[0:1], a[1:2], a[2:3], b, c[None]]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == (1, 3, 32, 32)
        np.testing.assert_array_equal(g, w)


def test_single_npy_and_npz_files(tiny, two_inputs, tmp_path):
    x = rand((2, 3, 32, 32))
    np.save(tmp_path / "x.npy", x)
    got = list(calibration_feeds(tmp_path / "x.npy", tiny))
    assert len(got) == 2
    np.testing.assert_array_equal(got[1]["input"], x[1:2])
    np.savez(tmp_path / "arr.npz", x)  # a lone arr_0 is the single input
    (got,) = list(calibration_feeds(tmp_path / "arr.npz", tiny, num_samples=1))
    np.testing.assert_array_equal(got["input"], x[:1])

    d = tmp_path / "pairs"
    d.mkdir()
    xs, ys = rand((3, 4), 1), rand((3, 4), 2)
    np.savez(d / "0.npz", x=xs, y=ys)  # three rows each
    np.savez(d / "1.npz", x=xs[0], y=ys[0])  # no batch axis
    got = list(calibration_feeds(d, two_inputs))
    assert len(got) == 4
    np.testing.assert_array_equal(got[1]["x"], xs[1:2])
    np.testing.assert_array_equal(got[1]["y"], ys[1:2])
    np.testing.assert_array_equal(got[3]["y"], ys[:1])


def test_feed_dicts_for_a_two_input_model(two_inputs):
    feeds = [{"x": rand((1, 4), i), "y": rand((1, 4), i + 9)} for i in range(2)]
    got = list(calibration_feeds(feeds, two_inputs))
    np.testing.assert_array_equal(got[1]["y"], feeds[1]["y"])


def test_images_use_the_caffe_preprocessing(tmp_path):
    """Mean, scale and BGR order recorded by the Caffe frontend; constant-colour images
    so the bilinear resize cannot change a pixel (an exact oracle)."""
    model = caffe_model(tmp_path, 3, 'transform_param { scale: 0.5 mean_value: 104 '
                        'mean_value: 117 mean_value: 123 }')
    pre = model.graph.signature.preprocessing
    assert pre.channel_order == "BGR" and pre.mean == [104, 117, 123]
    d = tmp_path / "images"
    d.mkdir()
    Image.new("RGB", (20, 11), (10, 200, 30)).save(d / "b.png")  # W x H = 20 x 11: resized
    Image.new("RGB", (5, 6), (255, 0, 128)).save(d / "a.bmp")  # already 5 x 6
    Image.new("L", (7, 7), 77).save(d / "c.jpg", quality=100)  # grayscale -> 3 channels
    data = calibration_feeds(d, model)
    assert data.total == 3
    got = [f["data"] for f in data]
    for g, rgb in zip(got, [(255, 0, 128), (10, 200, 30), (77, 77, 77)]):
        bgr = np.array(rgb[::-1], np.float32)
        want = np.broadcast_to(((bgr - [104, 117, 123]) * 0.5)[None, :, None, None], (1, 3, 6, 5))
        assert g.shape == (1, 3, 6, 5) and g.dtype == np.float32
        np.testing.assert_allclose(g, want, atol=0.5 if rgb[0] == 77 else 0)


def test_grayscale_images_for_a_one_channel_model(tmp_path):
    model = caffe_model(tmp_path, 1, hw=(8, 8))
    assert model.graph.signature.preprocessing is None
    d = tmp_path / "images"
    d.mkdir()
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    Image.fromarray(pixels).save(d / "x.pgm")
    Image.new("RGB", (16, 16), (30, 60, 90)).save(d / "y.png")  # color -> luminance
    with pytest.warns(UserWarning, match="records no preprocessing"):
        data = calibration_feeds(d, model)
    got = list(data)
    np.testing.assert_array_equal(got[0]["data"], pixels.astype(np.float32)[None, None])
    luminance = round((30 * 299 + 60 * 587 + 90 * 114) / 1000)  # ITU-R 601-2, as Pillow's "L"
    np.testing.assert_allclose(got[1]["data"], np.full((1, 1, 8, 8), luminance), atol=1)


def test_nhwc_image_input(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["img"], ["out"])], "nhwc",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 4, 6, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 6, 3])])
    path = tmp_path / "nhwc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = mobconv.convert(str(path))
    d = tmp_path / "images"
    d.mkdir()
    Image.new("RGB", (6, 4), (1, 2, 3)).save(d / "a.png")
    with pytest.warns(UserWarning):
        (got,) = list(calibration_feeds(d, model))
    np.testing.assert_array_equal(got["img"], np.broadcast_to(np.float32([1, 2, 3]), (1, 4, 6, 3)))


# ---- bad input: one line naming the sample, the input and the rule ------------------


def test_wrong_name_missing_input_wrong_shape_rank_dtype(tiny, two_inputs):
    good = rand((1, 3, 32, 32))
    msg = str(error_of(calibration_feeds([{"input": good}, {"image": good}], tiny)))
    assert "sample 1" in msg and "unknown input 'image'" in msg and "model inputs: input" in msg
    msg = str(error_of(calibration_feeds([{"x": rand((1, 4))}], two_inputs)))
    assert "sample 0" in msg and "missing input 'y'" in msg
    msg = str(error_of(calibration_feeds([{"input": rand((1, 3, 28, 28))}], tiny)))
    assert "sample 0" in msg and "'input'" in msg and \
        "expected shape [N, 3, 32, 32] (any batch size), got [1, 3, 28, 28]" in msg
    msg = str(error_of(calibration_feeds([{"input": rand((3, 32, 32))}], tiny)))
    assert "expected shape [N, 3, 32, 32]" in msg and "got [3, 32, 32]" in msg
    raw = np.zeros((1, 3, 32, 32), np.uint8)
    msg = str(error_of(calibration_feeds([good, raw], tiny)))
    assert "sample 1" in msg and "'input'" in msg and "uint8" in msg and "not cast" in msg
    msg = str(error_of(calibration_feeds([{"input": np.zeros((0, 3, 32, 32), np.float32)}], tiny)))
    assert "at least one element" in msg
    msg = str(error_of(calibration_feeds([rand((1, 4))], two_inputs)))
    assert "sample 0" in msg and "single-input model" in msg
    msg = str(error_of(calibration_feeds([(good, 3)], tiny)))
    assert "sample 0" in msg and "got a tuple of 2 items (a (data, label) pair" in msg
    msg = str(error_of(calibration_feeds([None], tiny)))
    assert "sample 0" in msg and "expected a dict of input name -> array" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_file_input_and_index(tiny, tmp_path, bad):
    x = rand((2, 3, 32, 32))
    x[1, 2, 3, 4] = bad
    np.save(tmp_path / "batch.npy", x)
    msg = str(error_of(calibration_feeds(tmp_path, tiny)))
    assert "file batch.npy row 1" in msg and "input 'input'" in msg
    assert "1 NaN/Inf value(s)" in msg and "[0, 2, 3, 4]" in msg and "must be finite" in msg


def test_empty_data(tiny, tmp_path):
    msg = str(error_of(calibration_feeds([], tiny)))
    assert "is empty: no samples" in msg
    msg = str(error_of(lambda: calibration_feeds(str(tmp_path), tiny)))
    assert str(tmp_path) in msg and "is empty: no .npy/.npz files or images" in msg
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 32, 32), np.float32))
    msg = str(error_of(calibration_feeds(str(tmp_path), tiny)))
    assert "file empty.npy" in msg and "0 samples" in msg


def test_unreadable_files(tiny, tmp_path):
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    msg = str(error_of(calibration_feeds(str(tmp_path), tiny)))
    assert "broken.npy" in msg and "cannot be read" in msg
    images = tmp_path / "images"
    images.mkdir()
    (images / "photo.png").write_bytes(b"not a png")
    model = caffe_model(tmp_path, 3, 'transform_param { mean_value: 1 }')
    msg = str(error_of(calibration_feeds(str(images), model)))
    assert "photo.png" in msg and "cannot be read" in msg and "not an image" in msg
    msg = str(error_of(lambda: calibration_feeds(str(tmp_path / "nope"), tiny)))
    assert "nope: no such file or directory" in msg


def test_file_layout_errors(tiny, two_inputs, tmp_path):
    np.save(tmp_path / "x.npy", rand((1, 4)))
    msg = str(error_of(calibration_feeds(str(tmp_path), two_inputs)))
    assert "x.npy" in msg and "has 2 inputs (x, y)" in msg and ".npz" in msg
    d = tmp_path / "npz"
    d.mkdir()
    np.savez(d / "s.npz", x=rand((1, 4)), z=rand((1, 4)))
    msg = str(error_of(calibration_feeds(str(d), two_inputs)))
    assert "file s.npz" in msg and "unknown input 'z'" in msg
    np.savez(d / "s.npz", x=rand((2, 4)), y=rand((3, 4)))
    msg = str(error_of(calibration_feeds(str(d), two_inputs)))
    assert "file s.npz" in msg and "same number of samples" in msg
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.save(mixed / "a.npy", rand((1, 3, 32, 32)))
    Image.new("RGB", (4, 4)).save(mixed / "b.png")
    msg = str(error_of(lambda: calibration_feeds(str(mixed), tiny)))
    assert "both arrays (a.npy) and images (b.png)" in msg


def test_images_for_a_model_that_cannot_take_them(two_inputs, tiny, tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    msg = str(error_of(lambda: calibration_feeds(str(tmp_path), two_inputs)))
    assert "has 2 inputs" in msg
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["out"])], "free",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, "h", "w"])])
    path = tmp_path / "free.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    msg = str(error_of(lambda: calibration_feeds(str(tmp_path), mobconv.convert(str(path)))))
    assert "input 'input' [1, 3, h, w] has a symbolic height or width" in msg


def test_bad_calibration_arguments(tiny):
    with pytest.raises(ArgumentError, match="no calibration data given"):
        calibration_feeds(None, tiny)
    with pytest.raises(ArgumentError, match="got a int"):
        calibration_feeds(3, tiny)
    with pytest.raises(ArgumentError, match="needs a mobconv.Model or Graph"):
        calibration_feeds([], "model.onnx")
    assert issubclass(CalibrationDataError, MobconvError)
