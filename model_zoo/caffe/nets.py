"""Zoo recipes: small Caffe nets of well-known architectures, seeded weights.

    python -m model_zoo.caffe.nets OUT_DIR      # writes <name>.prototxt + .caffemodel for all

Each `build_<name>(out_dir)` returns (prototxt, caffemodel). Spatial sizes are
small so conversion and comparison with OpenCV stay fast. `MODELS` lists them.
"""
from __future__ import annotations

import sys

import numpy as np

from ._builder import NetBuilder


def build_lenet(out_dir):
    """LeNet, written in the old V1 format (`layers { type: CONVOLUTION }`, input_dim)."""
    n = NetBuilder("lenet", seed=1, v1=True)
    n.input("data", (1, 1, 28, 28))
    x = n.conv("conv1", "data", 6, 5, in_channels=1)
    x = n.pool("pool1", x)
    x = n.conv("conv2", x, 16, 5, in_channels=6)
    x = n.pool("pool2", x)
    x = n.fc("ip1", x, 64, 16 * 4 * 4)
    x = n.relu("relu1", x)
    x = n.fc("ip2", x, 10, 64)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_alexnet(out_dir):
    """AlexNet-style: big strided conv, LRN (both regions), grouped convs, overlapping
    ceil-mode max pools, dropout, two FC layers."""
    n = NetBuilder("alexnet", seed=2)
    n.input("data", (1, 3, 67, 67))
    x = n.conv("conv1", "data", 16, 11, stride=4, in_channels=3)
    x = n.relu("relu1", x)
    x = n.layer("LRN", "norm1", x, lrn_param={"localSize": 5, "alpha": 1e-4, "beta": 0.75})
    x = n.pool("pool1", x, kernel=3, stride=2)
    x = n.conv("conv2", x, 32, 5, pad=2, group=2, in_channels=16)
    x = n.relu("relu2", x)
    x = n.layer("LRN", "norm2", x, lrn_param={"localSize": 3, "alpha": 1e-3, "beta": 0.75,
                                               "normRegion": "WITHIN_CHANNEL"})
    x = n.pool("pool2", x, kernel=3, stride=2)
    x = n.conv("conv3", x, 48, 3, pad=1, in_channels=32)
    x = n.relu("relu3", x)
    x = n.conv("conv4", x, 48, 3, pad=1, group=2, in_channels=48)
    x = n.relu("relu4", x)
    x = n.pool("pool5", x, kernel=3, stride=2)
    x = n.fc("fc6", x, 64, 48 * 1 * 1)
    x = n.relu("relu6", x)
    x = n.layer("Dropout", "drop6", x, x, dropout_param={"dropoutRatio": 0.5})
    x = n.fc("fc8", x, 10, 64)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_vgg(out_dir):
    """VGG-style: stacks of 3x3 convs (one without bias), max pools, an AVE pool with pad."""
    n = NetBuilder("vgg", seed=3)
    n.input("data", (1, 3, 32, 32))
    x, c = "data", 3
    for block, (width, reps) in enumerate([(8, 2), (16, 2), (32, 3)], start=1):
        for r in range(1, reps + 1):
            x = n.conv(f"conv{block}_{r}", x, width, 3, pad=1, in_channels=c, bias=(r != 2))
            x = n.relu(f"relu{block}_{r}", x)
            c = width
        x = n.pool(f"pool{block}", x)
    x = n.pool("pool_ave", x, method="AVE", kernel=3, stride=2, pad=1)  # 4x4 -> 3x3 (clipped windows)
    x = n.fc("fc6", x, 32, 32 * 3 * 3)
    x = n.relu("relu6", x)
    x = n.fc("fc7", x, 10, 32)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_inception(out_dir):
    """GoogLeNet-style: stem + one Inception block (1x1, 3x3 reduce, 5x5 reduce,
    pool-proj), Concat, global AVE pool, FC."""
    n = NetBuilder("inception", seed=4)
    n.input("data", (1, 3, 31, 31))
    x = n.conv("conv1", "data", 16, 7, stride=2, pad=3, in_channels=3)
    x = n.relu("relu1", x)
    x = n.pool("pool1", x, kernel=3, stride=2)  # ceil mode: 16 -> 8
    b1 = n.relu("inc/1x1_relu", n.conv("inc/1x1", x, 8, 1, in_channels=16))
    b2 = n.conv("inc/3x3_reduce", x, 8, 1, in_channels=16)
    b2 = n.relu("inc/3x3_reduce_relu", b2)
    b2 = n.relu("inc/3x3_relu", n.conv("inc/3x3", b2, 12, 3, pad=1, in_channels=8))
    b3 = n.relu("inc/5x5_reduce_relu", n.conv("inc/5x5_reduce", x, 4, 1, in_channels=16))
    b3 = n.relu("inc/5x5_relu", n.conv("inc/5x5", b3, 6, 5, pad=2, in_channels=4))
    b4 = n.layer("Pooling", "inc/pool", x, pooling_param={"pool": "MAX", "kernelSize": 3, "stride": 1, "pad": 1})
    b4 = n.relu("inc/pool_proj_relu", n.conv("inc/pool_proj", b4, 6, 1, in_channels=16))
    x = n.layer("Concat", "inc/output", [b1, b2, b3, b4])
    x = n.pool("pool_global", x, method="AVE", global_pooling=True)
    x = n.fc("loss3/classifier", x, 10, 32)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_resnet(out_dir):
    """ResNet-style: conv + BatchNorm + Scale + in-place ReLU, two residual blocks
    (identity and projection shortcut), Eltwise SUM, global AVE pool, FC."""
    n = NetBuilder("resnet", seed=5)
    n.input("data", (1, 3, 24, 24))
    x = n.conv("conv1", "data", 8, 3, pad=1, bias=False, in_channels=3)
    n.batchnorm_scale("conv1", x, 8)
    x = n.relu("conv1_relu", x)

    def block(name, x, cin, cout, stride):
        a = n.conv(f"{name}_branch2a", x, cout, 3, stride=stride, pad=1, bias=False, in_channels=cin)
        n.batchnorm_scale(f"{name}_branch2a", a, cout)
        a = n.relu(f"{name}_branch2a_relu", a)
        b = n.conv(f"{name}_branch2b", a, cout, 3, pad=1, bias=False, in_channels=cout)
        n.batchnorm_scale(f"{name}_branch2b", b, cout)
        short = x
        if stride != 1 or cin != cout:
            short = n.conv(f"{name}_branch1", x, cout, 1, stride=stride, bias=False, in_channels=cin)
            n.batchnorm_scale(f"{name}_branch1", short, cout)
        y = n.layer("Eltwise", name, [short, b])
        return n.relu(f"{name}_relu", y)

    x = block("res2a", x, 8, 8, 1)
    x = block("res3a", x, 8, 16, 2)
    x = n.pool("pool5", x, method="AVE", global_pooling=True)
    x = n.fc("fc10", x, 10, 16)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_squeezenet(out_dir):
    """SqueezeNet v1.1-style: fire modules (squeeze 1x1, expand 1x1 + 3x3, Concat),
    Dropout, conv classifier, global AVE pool, Softmax."""
    n = NetBuilder("squeezenet", seed=6)
    n.input("data", (1, 3, 35, 35))
    x = n.relu("relu_conv1", n.conv("conv1", "data", 16, 3, stride=2, in_channels=3))
    x = n.pool("pool1", x, kernel=3, stride=2)

    def fire(name, x, cin, s, e):
        sq = n.relu(f"{name}/relu_squeeze1x1", n.conv(f"{name}/squeeze1x1", x, s, 1, in_channels=cin))
        e1 = n.relu(f"{name}/relu_expand1x1", n.conv(f"{name}/expand1x1", sq, e, 1, in_channels=s))
        e3 = n.relu(f"{name}/relu_expand3x3", n.conv(f"{name}/expand3x3", sq, e, 3, pad=1, in_channels=s))
        return n.layer("Concat", f"{name}/concat", [e1, e3])

    x = fire("fire2", x, 16, 4, 8)
    x = fire("fire3", x, 16, 4, 8)
    x = n.pool("pool3", x, kernel=3, stride=2)
    x = fire("fire4", x, 16, 8, 16)
    x = n.layer("Dropout", "drop9", x, x)
    x = n.relu("relu_conv10", n.conv("conv10", x, 10, 1, in_channels=32))
    x = n.pool("pool10", x, method="AVE", global_pooling=True)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_mobilenet(out_dir):
    """MobileNet v1-style: depthwise (group = channels) + pointwise convs with
    BatchNorm + Scale + ReLU, global AVE pool, 1x1 conv classifier, Flatten, Softmax."""
    n = NetBuilder("mobilenet", seed=7)
    n.input("data", (1, 3, 32, 32))
    x = n.conv("conv1", "data", 8, 3, stride=2, pad=1, bias=False, in_channels=3)
    n.batchnorm_scale("conv1", x, 8)
    x = n.relu("relu1", x)
    c = 8
    for i, (cout, stride) in enumerate([(16, 1), (32, 2), (32, 1), (64, 2)], start=2):
        x = n.conv(f"conv{i}/dw", x, c, 3, stride=stride, pad=1, group=c, bias=False, in_channels=c)
        n.batchnorm_scale(f"conv{i}/dw", x, c)
        x = n.relu(f"relu{i}/dw", x)
        x = n.conv(f"conv{i}/sep", x, cout, 1, bias=False, in_channels=c)
        n.batchnorm_scale(f"conv{i}/sep", x, cout)
        x = n.relu(f"relu{i}/sep", x)
        c = cout
    x = n.pool("pool6", x, method="AVE", global_pooling=True)
    x = n.conv("fc7", x, 10, 1, in_channels=c)
    x = n.layer("Flatten", "flatten", x)
    n.softmax("prob", x)
    return n.save(out_dir)


def build_ssd(out_dir):
    """SSD head on a tiny backbone: two feature maps, each with loc/conf 3x3 convs,
    Permute(0,2,3,1) + Flatten, Normalize on the first map, PriorBox per map,
    Concat, conf Reshape + Softmax + Flatten, DetectionOutput."""
    n = NetBuilder("ssd", seed=8)
    num_classes = 3
    n.input("data", (1, 3, 32, 32))
    f1 = n.relu("relu1", n.conv("conv1", "data", 8, 3, stride=2, pad=1, in_channels=3))  # 16x16
    f1 = n.relu("relu2", n.conv("conv2", f1, 8, 3, stride=2, pad=1, in_channels=8))       # 8x8
    f2 = n.relu("relu3", n.conv("conv3", f1, 16, 3, stride=2, pad=1, in_channels=8))      # 4x4
    f1n = n.layer("Normalize", "conv2_norm", f1, None, [np.full(8, 20.0, np.float32)],
                  norm_param={"acrossSpatial": False, "channelShared": False})
    locs, confs, priors = [], [], []
    specs = [("f1", f1n, 8, {"minSize": [6.0], "maxSize": [12.0], "aspectRatio": [2.0]}, 4),
             ("f2", f2, 16, {"minSize": [12.0], "maxSize": [24.0], "aspectRatio": [2.0, 3.0]}, 6)]
    for name, feat, c, pb, k in specs:
        loc = n.conv(f"{name}_mbox_loc", feat, k * 4, 3, pad=1, in_channels=c)
        loc = n.layer("Permute", f"{name}_mbox_loc_perm", loc, permute_param={"order": [0, 2, 3, 1]})
        locs.append(n.layer("Flatten", f"{name}_mbox_loc_flat", loc, flatten_param={"axis": 1}))
        conf = n.conv(f"{name}_mbox_conf", feat, k * num_classes, 3, pad=1, in_channels=c, weight_scale=0.05)
        conf = n.layer("Permute", f"{name}_mbox_conf_perm", conf, permute_param={"order": [0, 2, 3, 1]})
        confs.append(n.layer("Flatten", f"{name}_mbox_conf_flat", conf, flatten_param={"axis": 1}))
        pb = dict(pb, flip=True, clip=False, variance=[0.1, 0.1, 0.2, 0.2], offset=0.5)
        priors.append(n.layer("PriorBox", f"{name}_mbox_priorbox", [feat, "data"], prior_box_param=pb))
    loc = n.layer("Concat", "mbox_loc", locs, concat_param={"axis": 1})
    conf = n.layer("Concat", "mbox_conf", confs, concat_param={"axis": 1})
    prior = n.layer("Concat", "mbox_priorbox", priors, concat_param={"axis": 2})
    conf = n.layer("Reshape", "mbox_conf_reshape", conf, reshape_param={"shape": {"dim": [0, -1, num_classes]}})
    conf = n.layer("Softmax", "mbox_conf_softmax", conf, softmax_param={"axis": 2})
    conf = n.layer("Flatten", "mbox_conf_flatten", conf, flatten_param={"axis": 1})
    n.layer("DetectionOutput", "detection_out", [loc, conf, prior], detection_output_param={
        "numClasses": num_classes, "shareLocation": True, "backgroundLabelId": 0,
        "nmsParam": {"nmsThreshold": 0.45, "topK": 50}, "codeType": "CENTER_SIZE",
        "keepTopK": 20, "confidenceThreshold": 0.4})
    return n.save(out_dir)


MODELS = {
    "lenet": build_lenet,
    "alexnet": build_alexnet,
    "vgg": build_vgg,
    "inception": build_inception,
    "resnet": build_resnet,
    "squeezenet": build_squeezenet,
    "mobilenet": build_mobilenet,
    "ssd": build_ssd,
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = argv[0] if argv else "caffe_zoo"
    for name, build in MODELS.items():
        print(*build(out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
