"""More constructs from real-world Caffe files (second batch): V0 nets (2014),
fork layer spellings, SegNet/ENet pooling masks, and other patterns met while
converting public deploy files. Each net is written here in its own words and
checked against OpenCV's Caffe importer with the same (seeded random) weights,
or against a hand-checked numpy formula where OpenCV lacks the layer.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mobconv.errors import MobconvError, UnsupportedOpsError  # noqa: E402
from mobconv.frontends.caffe import caffe_pb2, load_caffe  # noqa: E402
from mobconv.frontends.caffe.weights import save_random_caffemodel  # noqa: E402
from mobconv.reference.interpreter import run  # noqa: E402

from test_caffe_real_patterns import RTOL, load, rel_err, write  # noqa: E402  (shared helpers)


def rand(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def opencv(prototxt, caffemodel, feeds, layers):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    for name, x in feeds.items():
        net.setInput(x, name)
    return net.forward(layers)


def random_weights(tmp_path, prototxt, **kw):
    cm = str(tmp_path / "w.caffemodel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_random_caffemodel(prototxt, cm, **kw)
    return cm


# ---- V0 nets ---------------------------------------------------------------

V0_NET = """name: "tiny_v0"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 15
input_dim: 15
layers { layer { name: "c1" type: "conv" num_output: 6 kernelsize: 5 stride: 2 blobs_lr: 1. blobs_lr: 2. }
         bottom: "data" top: "c1" }
layers { layer { name: "r1" type: "relu" } bottom: "c1" top: "c1" }
layers { layer { name: "p1" type: "pool" pool: MAX kernelsize: 3 stride: 2 } bottom: "c1" top: "p1" }
layers { layer { name: "n1" type: "lrn" local_size: 3 alpha: 0.001 beta: 0.75 } bottom: "p1" top: "n1" }
layers { layer { name: "pad2" type: "padding" pad: 1 } bottom: "n1" top: "pad2" }
layers { layer { name: "c2" type: "conv" num_output: 4 group: 2 kernelsize: 3 biasterm: false } bottom: "pad2" top: "c2" }
layers { layer { name: "pad3" type: "padding" pad: 1 } bottom: "c2" top: "pad3" }
layers { layer { name: "p3" type: "pool" pool: AVE kernelsize: 3 stride: 2 } bottom: "pad3" top: "p3" }
layers { layer { name: "fc" type: "innerproduct" num_output: 5 } bottom: "p3" top: "fc" }
layers { layer { name: "d" type: "dropout" dropout_ratio: 0.5 } bottom: "fc" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""


def test_v0_net_with_padding_layers_matches_opencv(tmp_path):
    """V0 (`layers { layer { type: "conv" kernelsize: 5 } }`): flat fields moved
    into the typed parameters, "padding" layers merged into the conv or pool
    they feed (Caffe's UpgradeV0PaddingLayers; OpenCV upgrades the same way)."""
    p = write(tmp_path, "v0", V0_NET)
    cm = random_weights(tmp_path, p)
    with pytest.warns(UserWarning, match="V0 net"):
        graph = load_caffe(p, cm)
    assert "pad2" not in graph.values and "pad3" not in graph.values
    conv2 = next(n for n in graph.nodes if n.op == "Conv" and n.inputs[0].startswith("n1"))
    assert conv2.attrs["pads"] == [1, 1, 1, 1] and conv2.attrs["group"] == 2 and len(conv2.inputs) == 2
    x = {"data": rand((1, 3, 15, 15))}
    ours = run(graph, x)["prob"]
    assert rel_err(ours, opencv(p, cm, x, "prob")) < RTOL


def test_v0_caffemodel_blobs_inside_the_v0_layer(tmp_path):
    """A V0 caffemodel keeps the blobs inside `layer { blobs }`; they are matched by
    the V0 layer name like any other weights."""
    p = write(tmp_path, "v0", V0_NET)
    modern = load(p, random_weights(tmp_path, p))
    net = caffe_pb2.NetParameter(name="tiny_v0")
    for lname in ("c1", "c2", "fc"):
        v1 = net.layers.add()
        v1.layer.name = lname
        v1.layer.type = "innerproduct" if lname == "fc" else "conv"
        for suffix in ("weights", "bias"):
            value = modern.values.get(f"{lname}/{suffix}")
            if value is None:
                continue
            blob = v1.layer.blobs.add()
            # old 4-D dims, as 2014 files wrote them: (1, 1, 1, count)
            blob.num, blob.channels, blob.height, blob.width = 1, 1, 1, value.data.size
            blob.data.extend(value.data.ravel().tolist())
    cm = tmp_path / "v0.caffemodel"
    cm.write_bytes(net.SerializeToString())
    graph = load(p, str(cm))
    x = {"data": rand((1, 3, 15, 15), seed=4)}
    np.testing.assert_allclose(run(graph, x)["prob"], run(modern, x)["prob"], rtol=1e-6)


def test_v0_train_net_data_layer_and_loss(tmp_path):
    """V0 train net: the "data" layer's cropsize gives the spatial size, the loss is dropped."""
    text = V0_NET.split("layers", 1)[1]
    text = ('name: "t"\nlayers { layer { name: "data" type: "data" source: "train-leveldb" '
            'meanfile: "mean.binaryproto" batchsize: 256 cropsize: 15 mirror: true } top: "data" top: "label" }\n'
            'layers' + text + 'layers { layer { name: "loss" type: "softmax_loss" } bottom: "fc" bottom: "label" }\n')
    p = write(tmp_path, "v0t", text.replace('bottom: "fc" top: "prob"', 'bottom: "fc" top: "prob2"'))
    with pytest.raises(MobconvError, match="crop_size 15"):
        load(p, random_weights=True)
    graph = load(p, random_weights=True, input_shapes={"data": (1, 3, 15, 15)})
    assert graph.outputs == ["prob2"]


def test_v0_padding_into_other_layer_types_is_an_error(tmp_path):
    p = write(tmp_path, "bad", 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 5\ninput_dim: 5\n'
              'layers { layer { name: "pad" type: "padding" pad: 1 } bottom: "data" top: "pad" }\n'
              'layers { layer { name: "r" type: "relu" } bottom: "pad" top: "r" }\n')
    with pytest.raises(MobconvError, match="only conv and pool"):
        load(p)


# ---- depthwise layers of MobileNet/ShuffleNet forks --------------------------


def test_convolution_depthwise_layer_of_shufflenet_ports(tmp_path):
    """farmingyard's "ConvolutionDepthwise": one 3x3 filter per input channel,
    weights (C, 1, kh, kw), whatever num_output/group say (the first ShuffleNet
    unit writes no group at all). OpenCV reads it as a depthwise Convolution."""
    text = ('input: "data"\ninput_shape { dim: 1 dim: 6 dim: 8 dim: 8 }\n'
            'layer { name: "pw" type: "Convolution" bottom: "data" top: "pw" convolution_param { num_output: 6 kernel_size: 1 group: 3 bias_term: false } }\n'
            'layer { name: "shuffle" type: "ShuffleChannel" bottom: "pw" top: "shuffle" shuffle_channel_param { group: 3 } }\n'
            'layer { name: "dw" type: "ConvolutionDepthwise" bottom: "shuffle" top: "dw" '
            'convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 bias_term: false } }\n'
            'layer { name: "dw_bias" type: "ConvolutionDepthwise" bottom: "dw" top: "dw_bias" '
            'convolution_param { num_output: 6 group: 6 kernel_size: 3 pad: 1 } }\n'
            'layer { name: "match" type: "Pooling" bottom: "data" top: "match" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }\n'
            'layer { name: "cat" type: "Concat" bottom: "match" bottom: "dw_bias" top: "cat" }\n')
    p = write(tmp_path, "dw", text)
    cm = random_weights(tmp_path, p)
    graph = load(p, cm)
    dw = [n for n in graph.nodes if n.op == "Conv" and n.attrs["group"] == 6]
    assert len(dw) == 2 and graph.values[dw[0].inputs[1]].shape == (6, 1, 3, 3)
    x = {"data": rand((1, 6, 8, 8))}
    assert rel_err(run(graph, x)["cat"], opencv(p, cm, x, "cat")) < RTOL


def test_depthwise_convolution_layer_is_a_convolution(tmp_path):
    """yonghenglh6's "DepthwiseConvolution" (MobileNet ports) is a faster
    Convolution with the same parameters; OpenCV does not know the type, so
    the file is compared with the same net spelled "Convolution"."""
    text = ('input: "data"\ninput_shape { dim: 1 dim: 4 dim: 7 dim: 7 }\n'
            'layer { name: "dw" type: "DepthwiseConvolution" bottom: "data" top: "dw" '
            'convolution_param { num_output: 8 group: 4 kernel_size: 3 pad: 1 stride: 2 } }\n')
    p = write(tmp_path, "dw", text)
    plain = write(tmp_path, "plain", text.replace('"DepthwiseConvolution"', '"Convolution"'))
    cm = random_weights(tmp_path, p)
    x = {"data": rand((1, 4, 7, 7))}
    assert rel_err(run(load(p, cm), x)["dw"], opencv(plain, cm, x, "dw")) < RTOL


# ---- SegNet / ENet max unpooling --------------------------------------------


def test_segnet_pooling_mask_and_unpooling_listed_as_unsupported(tmp_path):
    """SegNet/ENet: a MAX Pooling with a second (mask) top and an Upsample reading
    it. Both are named in the one-line unsupported listing (exit 2, no file),
    together with any unknown layer type, instead of an arity error."""
    p = write(tmp_path, "segnet", 'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
              'layer { name: "pool1" type: "Pooling" bottom: "data" top: "pool1" top: "pool1_mask" '
              'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
              'layer { name: "up1" type: "Upsample" bottom: "pool1" bottom: "pool1_mask" top: "up1" upsample_param { scale: 2 } }\n'
              'layer { name: "sp" type: "Pooling" bottom: "up1" top: "sp" pooling_param { pool: STOCHASTIC kernel_size: 2 } }\n'
              'layer { name: "x" type: "Reorg" bottom: "sp" top: "x" }\n')
    with pytest.raises(UnsupportedOpsError) as err:
        load(p, random_weights=True)
    msg = str(err.value)
    assert "Pooling with a max-index mask top (SegNet/ENet unpooling) x1 ('pool1')" in msg
    assert "Upsample with a pooling-mask bottom" in msg and "('up1')" in msg
    assert "Pooling STOCHASTIC x1 ('sp')" in msg and "Reorg x1 ('x')" in msg
    out = tmp_path / "segnet.mob"
    cli = subprocess.run([sys.executable, "-m", "mobconv", "caffe2mob", p, "--random-weights", "-o", str(out)],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and not out.exists()
    assert len(cli.stderr.strip().splitlines()) == 1 and "pool1_mask" not in cli.stderr
