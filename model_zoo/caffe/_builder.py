"""A tiny helper that writes real Caffe files (deploy prototxt + binary caffemodel)
through mobconv's caffe_pb2, so the zoo needs no Caffe install.

    net = NetBuilder("lenet", seed=0)
    net.input("data", (1, 1, 28, 28))
    x = net.conv("conv1", "data", 8, kernel=5)
    ...
    net.save(out_dir)  # -> (lenet.prototxt, lenet.caffemodel)

The prototxt holds structure only; the caffemodel holds each weighted layer's
name, type and blobs (which is all Caffe and OpenCV read from it).
`v1=True` writes the old `layers { type: CONVOLUTION }` format instead.
"""
from __future__ import annotations

import os

import numpy as np
from google.protobuf import json_format, text_format

from mobconv.frontends.caffe import caffe_pb2
from mobconv.frontends.caffe.parser import V1_TYPES

V1_ENUM = {v: k for k, v in V1_TYPES.items()}


class NetBuilder:
    def __init__(self, name: str, seed: int = 0, v1: bool = False, legacy_input: bool = False):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.v1 = v1
        self.legacy_input = legacy_input or v1
        self.net = caffe_pb2.NetParameter(name=name)
        self.weights = caffe_pb2.NetParameter(name=name)

    # ---- generic ---------------------------------------------------------
    def input(self, name, shape):
        if self.legacy_input:
            self.net.input.append(name)
            self.net.input_dim.extend(shape)
        else:
            layer = self.net.layer.add(name=name, type="Input", top=[name])
            layer.input_param.shape.add(dim=list(shape))
        return name

    def layer(self, type_, name, bottoms, tops=None, blobs=(), **params):
        tops = [name] if tops is None else ([tops] if isinstance(tops, str) else list(tops))
        bottoms = [bottoms] if isinstance(bottoms, str) else list(bottoms)
        if self.v1:
            layer = self.net.layers.add(name=name, type=V1_ENUM[type_], bottom=bottoms, top=tops)
        else:
            layer = self.net.layer.add(name=name, type=type_, bottom=bottoms, top=tops)
        for field, value in params.items():
            json_format.ParseDict(value, getattr(layer, field))
        # Like Caffe, the caffemodel lists every layer; weighted ones carry blobs.
        if self.v1:
            w = self.weights.layers.add(name=name, type=V1_ENUM[type_], bottom=bottoms, top=tops)
        else:
            w = self.weights.layer.add(name=name, type=type_, bottom=bottoms, top=tops)
        if blobs:
            for array in blobs:
                blob = w.blobs.add()
                if self.v1:  # old caffemodels: 4-D num/channels/height/width
                    dims = (1,) * (4 - array.ndim) + tuple(array.shape)
                    blob.num, blob.channels, blob.height, blob.width = dims
                else:
                    blob.shape.dim.extend(array.shape)
                blob.data.extend(np.asarray(array, np.float32).ravel().tolist())
        return tops[0] if len(tops) == 1 else tops

    def randn(self, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
        return (self.rng.standard_normal(shape) * s).astype(np.float32)

    # ---- common layers -----------------------------------------------------
    def conv(self, name, bottom, num_output, kernel, stride=1, pad=0, group=1, bias=True,
             dilation=1, in_channels=None, top=None, weight_scale=1.0):
        assert in_channels is not None, "pass in_channels"
        p = {"numOutput": num_output, "kernelSize": [kernel], "stride": [stride], "pad": [pad]}
        if group != 1:
            p["group"] = group
        if dilation != 1:
            p["dilation"] = [dilation]
        if not bias:
            p["biasTerm"] = False
        blobs = [self.randn(num_output, in_channels // group, kernel, kernel) * np.float32(weight_scale)]
        if bias:
            blobs.append(self.randn(num_output, scale=0.1))
        return self.layer("Convolution", name, bottom, top, blobs, convolution_param=p)

    def relu(self, name, bottom, inplace=True, slope=0.0):
        params = {"relu_param": {"negativeSlope": slope}} if slope else {}
        return self.layer("ReLU", name, bottom, bottom if inplace else name, **params)

    def pool(self, name, bottom, method="MAX", kernel=2, stride=2, pad=0, global_pooling=False):
        p = {"pool": method}
        if global_pooling:
            p["globalPooling"] = True
        else:
            p.update(kernelSize=kernel, stride=stride)
            if pad:
                p["pad"] = pad
        return self.layer("Pooling", name, bottom, pooling_param=p)

    def fc(self, name, bottom, num_output, in_features):
        blobs = [self.randn(num_output, in_features), self.randn(num_output, scale=0.1)]
        return self.layer("InnerProduct", name, bottom, None, blobs,
                          inner_product_param={"numOutput": num_output})

    def batchnorm_scale(self, name, bottom, channels):
        """BatchNorm (mean, var, scale factor) + Scale(bias_term), both in place."""
        factor = np.float32(0.5)
        mean = self.randn(channels, scale=0.1) * factor
        var = self.rng.uniform(0.5, 1.5, channels).astype(np.float32) * factor
        self.layer("BatchNorm", f"{name}/bn", bottom, bottom, [mean, var, np.array([factor], np.float32)],
                   batch_norm_param={"useGlobalStats": True, "eps": 1e-5})
        self.layer("Scale", f"{name}/scale", bottom, bottom,
                   [self.rng.uniform(0.5, 1.5, channels).astype(np.float32), self.randn(channels, scale=0.1)],
                   scale_param={"biasTerm": True})
        return bottom

    def softmax(self, name, bottom, axis=None):
        params = {"softmax_param": {"axis": axis}} if axis is not None else {}
        return self.layer("Softmax", name, bottom, **params)

    # ---- output --------------------------------------------------------------
    def save(self, out_dir, stem=None):
        stem = stem or self.name
        os.makedirs(out_dir, exist_ok=True)
        prototxt = os.path.join(out_dir, f"{stem}.prototxt")
        caffemodel = os.path.join(out_dir, f"{stem}.caffemodel")
        with open(prototxt, "w") as f:
            f.write(text_format.MessageToString(self.net))
        with open(caffemodel, "wb") as f:
            f.write(self.weights.SerializeToString())
        return prototxt, caffemodel
