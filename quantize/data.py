"""Calibration data: every source the quantizer accepts, normalised to checked feed dicts.

    data = calibration_feeds("calib/", model)      # .npy/.npz files or images
    for feeds in data:                             # {input name: float32 array}
        ...

Sources (`calibration_feeds(calibration, model)`):
- an iterable of feed dicts (input name -> array); for a single-input model an
  item may also be a bare array;
- an object with `get_next()` returning a feed dict, then None at the end:
  onnxruntime's `CalibrationDataReader` protocol, so existing readers work as they
  are; `rewind()`, when the reader has it, is called before every pass after the
  first;
- a directory (searched recursively) or a single file of `.npy`/`.npz` arrays: an
  `.npz` holds one array per input name (a lone `arr_0` is the single input);
  an `.npy` is the single input of a single-input model;
- a directory of images (png, jpg, bmp, pgm, ...), decoded with Pillow, resized to
  the input's H x W (bilinear), made grayscale or RGB by the input's channel count
  and preprocessed as the model file records it (`mobconv info` shows it; Caffe
  models carry mean, scale and channel order): input = (raw[order] - mean) * scale,
  raw pixel values 0..255.

Files are read in sorted order of their path under the directory, so the same
directory always gives the same samples in the same order.

Samples. A feed dict from an iterable or reader is one sample, as given. A file
array may carry a leading batch axis: when the input's first dim is a batch dim
(symbolic, or 1, and the input has rank >= 2), the array is split into rows of
batch 1 and every row is a sample; an array without the batch axis (rank one
less than the input) is one sample. Splitting keeps memory bounded: an `.npy` is
memory-mapped and only the current row is read (an `.npz` member is read whole, one
file at a time). `num_samples` counts samples.

Every sample is checked before it is used: known and complete input names,
dtype by mobconv.feeds' rules (a float input refuses raw integer pixels), rank
and fixed dims, at least one element, only finite values. A failure is a
`CalibrationDataError` (exit 2), one line naming the sample (file or index),
the input and the rule broken.
"""
from __future__ import annotations

import os
import stat
import warnings
import zipfile
from collections.abc import Mapping
from typing import Iterator, Optional

import numpy as np

from mobconv import feeds as _feeds
from mobconv.errors import ArgumentError, MobconvError, UsageError

ARRAY_EXTENSIONS = (".npy", ".npz")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm",
                    ".gif", ".tif", ".tiff", ".webp")


class CalibrationDataError(UsageError):
    """Calibration data that cannot be used: wrong name/shape/dtype, NaN/Inf, empty,
    unreadable. Exit code 2, as for other bad command-line input."""


def _fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Spec:
    """What a calibration sample must look like for one model input."""

    def __init__(self, name: str, dtype: str, shape: tuple, layout: str = ""):
        self.name, self.dtype, self.shape, self.layout = name, dtype or "float32", tuple(shape), layout

    @property
    def batched(self) -> bool:
        """The first dim is a batch axis files may be split along."""
        return len(self.shape) >= 2 and (not isinstance(self.shape[0], int) or self.shape[0] == 1)

    def fits(self, shape) -> bool:
        return len(shape) == len(self.shape) and all(
            not isinstance(d, int) or d < 0 or d == got for d, got in zip(self.shape, shape))


def _model_specs(model) -> tuple:
    """(input specs, preprocessing or None, model label) of a Model or Graph."""
    graph = getattr(model, "graph", model)
    if not hasattr(graph, "inputs") or not hasattr(graph, "values"):
        raise ArgumentError(f"calibration_feeds() needs a mobconv.Model or Graph, got "
                            f"{type(model).__name__}")
    if hasattr(model, "graph"):
        specs = [_Spec(s.name, s.dtype, s.shape or (), s.layout) for s in model.inputs]
    else:
        declared = {s.name: s for s in graph.signature.inputs}
        specs = []
        for name in graph.inputs:
            v = graph.values[name]
            layout = declared[name].layout if name in declared else ""
            specs.append(_Spec(name, v.dtype, v.shape or (), layout))
    # Caffe nets whose H/W follow the input keep the file's sizes in the metadata:
    # images are resized to those (the batch dim stays symbolic)
    for item in filter(None, graph.metadata.options.get("declared_input_shapes", "").split(";")):
        name, _, dims = item.rpartition("=")
        for spec in specs:
            size = [int(d) for d in dims.split(",")]
            if spec.name == name and len(size) == len(spec.shape):
                spec.shape = spec.shape[:1] + tuple(d if isinstance(d, int) else size[i + 1]
                                                    for i, d in enumerate(spec.shape[1:]))
    return specs, graph.signature.preprocessing, getattr(model, "source", None)


class CalibrationData:
    """Checked calibration samples: iterate to get feed dicts (name -> array).

    `total` is the number of samples when it is known up front (lists, files),
    else None. `reiterable` says whether the data can be read more than once (a
    generator cannot; a list, a directory and a reader with `rewind()` can).
    """

    def __init__(self, produce, specs, description: str, total: Optional[int],
                 reiterable: bool, num_samples: Optional[int], rewind=None):
        self._produce = produce  # () -> iterator of (label, raw item, split?)
        self.specs = specs
        self._description = description
        self.num_samples = num_samples
        self.total = total if num_samples is None or total is None else min(total, num_samples)
        self.reiterable = reiterable
        self._rewind = rewind
        self._passes = 0
        self.samples_seen = 0  # samples yielded by the last complete or partial pass

    @property
    def _samples_seen(self) -> int:  # the name quantize/api.py reads
        return self.samples_seen

    def describe(self) -> str:
        return self._description

    def __repr__(self) -> str:
        total = "?" if self.total is None else self.total
        return f"<CalibrationData {self._description}: {total} samples>"

    def __iter__(self) -> Iterator[dict]:
        if self._passes and not self.reiterable:
            raise CalibrationDataError(
                f"calibration data {self._description} can be read only once (a generator or "
                "iterator); give a list, a directory, or a reader with rewind()")
        if self._passes and self._rewind is not None:
            self._rewind()
        self._passes += 1
        count = self.samples_seen = 0
        for label, item, split in self._produce():
            for sub_label, feeds in self._samples(label, item, split):
                if self.num_samples is not None and count >= self.num_samples:
                    return
                checked = self._check(sub_label, feeds)
                count = self.samples_seen = count + 1
                yield checked
            if self.num_samples is not None and count >= self.num_samples:
                return
        if count == 0:
            raise CalibrationDataError(f"calibration data {self._description} is empty: "
                                       "no samples (calibration needs at least one)")

    # ---- turning items into feed dicts ----------------------------------

    def _fail(self, label: str, rule: str):
        raise CalibrationDataError(f"calibration data {self._description}: {label}: {rule}")

    def _as_feeds(self, label: str, item) -> dict:
        if isinstance(item, Mapping):
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                self._fail(label, f"input names must be strings, got {bad[0]!r}")
            return dict(item)
        names = ", ".join(s.name for s in self.specs)
        if item is None or isinstance(item, (str, bytes)):
            self._fail(label, f"expected a dict of input name -> array (model inputs: {names}), "
                              f"got {'None' if item is None else 'a ' + type(item).__name__}")
        if isinstance(item, tuple):
            self._fail(label, f"expected a dict of input name -> array (model inputs: {names}), "
                              f"got a tuple of {len(item)} items (a (data, label) pair from a "
                              "data loader? give the data alone, or a dict)")
        if len(self.specs) != 1:
            self._fail(label, f"expected a dict of input name -> array (model inputs: {names}), "
                              f"got a {type(item).__name__}; a bare array is only accepted for a "
                              "single-input model")
        return {self.specs[0].name: item}

    def _samples(self, label: str, item, split: bool):
        """(label, feeds) pairs of one item; file arrays are split into batch-1 rows."""
        feeds = self._as_feeds(label, item)
        if not split:
            yield label, feeds
            return
        rows = None
        for spec in self.specs:
            arr = feeds.get(spec.name)
            if arr is None:
                continue
            shape = np.shape(arr)
            if spec.batched and len(shape) == len(spec.shape) - 1 and spec.fits((1,) + tuple(shape)):
                feeds[spec.name] = np.asarray(arr)[None]
                n = 1
            elif spec.batched and len(shape) == len(spec.shape) and spec.fits((1,) + tuple(shape[1:])):
                n = shape[0]
            else:
                n = None  # left for _check to report (or a single exact sample)
            if n is not None:
                if rows is not None and rows != n:
                    self._fail(label, f"input {spec.name!r} has {n} rows but another input has "
                                      f"{rows}: every array of a file must hold the same number "
                                      "of samples")
                rows = n
        if rows is None:
            yield label, feeds
            return
        if rows == 0:
            self._fail(label, "holds 0 samples (the batch axis is empty)")
        for i in range(rows):
            row = {}
            for name, arr in feeds.items():
                spec = next((s for s in self.specs if s.name == name), None)
                if spec is not None and spec.batched and np.ndim(arr) == len(spec.shape):
                    row[name] = np.array(arr[i:i + 1])  # a copy: only this row is read
                else:
                    row[name] = arr
            yield (label if rows == 1 else f"{label} row {i}"), row

    def _check(self, label: str, feeds: dict) -> dict:
        names = [s.name for s in self.specs]
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            self._fail(label, f"unknown input {unknown[0]!r} (model inputs: {', '.join(names)})")
        out = {}
        for spec in self.specs:
            if spec.name not in feeds:
                self._fail(label, f"missing input {spec.name!r} (model inputs: {', '.join(names)})")
            raw = feeds[spec.name]
            try:
                with np.errstate(over="ignore"):  # float64 beyond float32: reported below
                    arr = _feeds.as_input_array(raw, spec.dtype, spec.name)
            except ArgumentError as exc:
                self._fail(label, str(exc))
            if arr.dtype == object:
                self._fail(label, f"input {spec.name!r}: not a numeric array")
            if not spec.fits(arr.shape):
                batch = " (any batch size)" if spec.shape and not isinstance(spec.shape[0], int) else ""
                self._fail(label, f"input {spec.name!r}: expected shape {_fmt_shape(spec.shape)}"
                                  f"{batch}, got {_fmt_shape(arr.shape)}")
            if arr.size == 0:
                self._fail(label, f"input {spec.name!r} has shape {_fmt_shape(arr.shape)}: a "
                                  "calibration sample must hold at least one element")
            if arr.dtype.kind == "f":
                finite = np.isfinite(arr)
                if not finite.all():
                    bad = np.argwhere(~finite)
                    first = tuple(int(i) for i in bad[0])
                    value = arr[first]
                    given = raw[first] if isinstance(raw, np.ndarray) and raw.shape == arr.shape \
                        and raw.dtype.kind == "f" else value
                    why = f"first {value} at index {list(first)}"
                    if np.isfinite(given):
                        why = (f"first {float(given):g} at index {list(first)} is beyond "
                               f"{arr.dtype}'s range")
                    self._fail(label, f"input {spec.name!r} has {len(bad)} NaN/Inf value(s) "
                                      f"({why}): calibration data must be finite")
            out[spec.name] = np.ascontiguousarray(arr)
        return out


# ---- sources ----------------------------------------------------------------


def _list_files(root: str) -> list:
    """Files under `root`, recursively, sorted by relative path (hidden ones skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith("."):
                found.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(found)


def _npy_rows(path: str) -> Optional[tuple]:
    """Shape of an .npy file from its header (nothing else is read), or None."""
    try:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if major == 1
                    else np.lib.format.read_array_header_2_0)
            shape, _, _ = read(f)
        return shape
    except Exception:
        return None


class _FileSource:
    """Samples from .npy/.npz files or images under a directory (or one file)."""

    def __init__(self, root: str, files: list, specs, preprocessing, kind: str, model_label):
        self.root, self.files, self.specs = root, files, specs
        self.preprocessing, self.kind, self.model_label = preprocessing, kind, model_label

    def label(self, rel: str) -> str:
        return f"file {rel}"

    def count(self) -> Optional[int]:
        """Samples in all files when every .npy header says so (images: one each)."""
        if self.kind == "images":
            return len(self.files)
        total = 0
        for rel in self.files:
            if not rel.lower().endswith(".npy") or len(self.specs) != 1:
                return None
            shape = _npy_rows(os.path.join(self.root, rel))
            spec = self.specs[0]
            if shape is None:
                return None
            if spec.batched and len(shape) == len(spec.shape):
                total += shape[0]
            else:
                total += 1
        return total

    def __call__(self):
        for rel in self.files:
            path = os.path.join(self.root, rel)
            if self.kind == "images":
                yield self.label(rel), self._image(rel, path), False
            else:
                yield self.label(rel), self._arrays(rel, path), True

    def _unreadable(self, rel: str, why: str):
        raise CalibrationDataError(f"calibration file {os.path.join(self.root, rel)}: cannot be "
                                   f"read ({why})")

    def _arrays(self, rel: str, path: str):
        try:
            if rel.lower().endswith(".npy"):
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
                if len(self.specs) != 1:
                    raise CalibrationDataError(
                        f"calibration file {path}: an .npy file holds one array but the model "
                        f"has {len(self.specs)} inputs ({', '.join(s.name for s in self.specs)}); "
                        "use .npz files with one array per input name")
                return arr
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.files)
                names = [s.name for s in self.specs]
                if len(names) == 1 and keys == ["arr_0"]:
                    return {names[0]: npz["arr_0"]}
                return {k: npz[k] for k in keys}
        except CalibrationDataError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, ValueError) and "pickled" in str(exc):  # numpy's last guess
                self._unreadable(rel, "neither an .npy nor an .npz (zip) file, or pickled "
                                 "Python objects, which are not loaded")
            if isinstance(exc, ValueError) and "mmap length is greater" in str(exc):
                self._unreadable(rel, "truncated: the file is shorter than the array its .npy "
                                 "header declares")
            self._unreadable(rel, f"{type(exc).__name__}: {exc}".splitlines()[0])

    def _image(self, rel: str, path: str) -> dict:
        spec = self.specs[0]
        layout, channels, height, width = _image_geometry(spec)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            raise MobconvError("reading calibration images needs Pillow (pip install Pillow)") from None
        try:
            with Image.open(path) as img:
                img = img.convert("L" if channels == 1 else "RGB")
                if img.size != (width, height):
                    img = img.resize((width, height), Image.BILINEAR)
                pixels = np.asarray(img, dtype=np.float32)
        except (OSError, ValueError, SyntaxError) as exc:
            self._unreadable(rel, f"not an image Pillow can decode: {exc}".splitlines()[0])
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        return {spec.name: _preprocess(pixels, self.preprocessing, layout)}


def _image_geometry(spec: _Spec) -> tuple:
    """(layout, channels, H, W) of an image input, else CalibrationDataError."""
    shape = spec.shape
    layout = spec.layout
    if len(shape) == 4 and (not layout or shape[1] not in (1, 3)):
        # the ONNX frontend declares every float rank-4 input NCHW: trust the channel dim
        layout = "NCHW" if shape[1] in (1, 3) else "NHWC" if shape[3] in (1, 3) else layout
    if len(shape) != 4 or layout not in ("NCHW", "NHWC"):
        raise CalibrationDataError(
            f"input {spec.name!r} {_fmt_shape(shape)} is not an image tensor (N, C, H, W) with 1 "
            "or 3 channels: calibrate it with .npy/.npz files or feed dicts instead of images")
    c, h, w = (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
    if not all(isinstance(d, int) and d > 0 for d in (h, w)):
        raise CalibrationDataError(
            f"input {spec.name!r} {_fmt_shape(shape)} has a symbolic height or width, so images "
            "cannot be resized to it: convert with a fixed input shape, or give .npy files")
    if c not in (1, 3):
        raise CalibrationDataError(
            f"input {spec.name!r} {_fmt_shape(shape)} has {c} channels: images give 1 (grayscale) "
            "or 3 (color); give .npy/.npz files instead")
    return layout, c, h, w


def _preprocess(pixels: np.ndarray, pre, layout: str) -> np.ndarray:
    """HWC float32 pixels 0..255 -> the model input (1, C, H, W) or (1, H, W, C)."""
    x = pixels
    if pre is not None:
        if pre.channel_order == "BGR" and x.shape[2] == 3:
            x = x[:, :, ::-1]
        c = x.shape[2]
        if pre.mean:
            x = x - np.asarray(pre.mean[:c] if len(pre.mean) >= c else pre.mean[:1] * c, np.float32)
        if pre.scale:
            x = x * np.asarray(pre.scale[:c] if len(pre.scale) >= c else pre.scale[:1] * c, np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    x = x.transpose(2, 0, 1) if layout == "NCHW" else x
    return np.ascontiguousarray(x[None])


def _directory_source(path: str, specs, preprocessing, model_label, explicit_file: bool):
    if explicit_file:
        root, files = os.path.dirname(path) or ".", [os.path.basename(path)]
    else:
        root, files = path, _list_files(path)
    arrays = [f for f in files if f.lower().endswith(ARRAY_EXTENSIONS)]
    images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    for rel in arrays + images:  # a FIFO or device would block or never end when read
        full = os.path.join(root, rel)
        try:
            mode = os.stat(full).st_mode
        except OSError:
            continue  # a dangling link: reported as unreadable when read
        if not stat.S_ISREG(mode):
            raise CalibrationDataError(f"calibration file {full}: not a regular file (a FIFO, "
                                       "socket or device); give .npy/.npz files or images")
    if arrays and images:
        raise CalibrationDataError(
            f"calibration directory {path} holds both arrays ({arrays[0]}) and images "
            f"({images[0]}): give one kind per directory")
    if not arrays and not images:
        what = "file" if explicit_file else "directory"
        raise CalibrationDataError(
            f"calibration {what} {path} is empty: no .npy/.npz files or images "
            f"({', '.join(IMAGE_EXTENSIONS)})")
    if images:
        if len(specs) != 1:
            raise CalibrationDataError(
                f"calibration directory {path} holds images but the model has {len(specs)} "
                f"inputs ({', '.join(s.name for s in specs)}); use .npz files")
        _image_geometry(specs[0])
        if preprocessing is None:
            warnings.warn(f"{model_label or 'the model'} records no preprocessing: calibration "
                          f"images from {path} are fed as raw pixel values 0..255; give "
                          ".npy files or feed dicts if the model expects normalised input")
        return _FileSource(root, images, specs, preprocessing, "images", model_label)
    return _FileSource(root, arrays, specs, preprocessing, "arrays", model_label)


def _safe_len(obj) -> Optional[int]:
    try:
        n = len(obj)
    except Exception:
        return None
    return n if isinstance(n, int) and n >= 0 else None


def calibration_feeds(calibration, model, *, num_samples: Optional[int] = None) -> CalibrationData:
    """The calibration samples of `calibration` for `model`'s inputs (see module docstring)."""
    if isinstance(calibration, CalibrationData) and num_samples is None:
        return calibration
    if num_samples is not None and (isinstance(num_samples, (bool, np.bool_))
                                    or not isinstance(num_samples, (int, np.integer))
                                    or num_samples < 1):
        raise ArgumentError(f"num_samples must be a positive integer or None, got {num_samples!r}")
    num_samples = None if num_samples is None else int(num_samples)
    specs, preprocessing, model_label = _model_specs(model)
    if calibration is None:
        raise ArgumentError("no calibration data given (a directory of .npy/.npz files or "
                            "images, an iterable of feed dicts, or a reader with get_next())")

    if isinstance(calibration, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(calibration))
        if not os.path.exists(path):
            raise CalibrationDataError(f"calibration data {path}: no such file or directory")
        is_file = not os.path.isdir(path)
        if is_file and not path.lower().endswith(ARRAY_EXTENSIONS + IMAGE_EXTENSIONS):
            raise CalibrationDataError(
                f"calibration file {path}: not a .npy/.npz file or an image (give a directory "
                "of them)")
        source = _directory_source(path, specs, preprocessing, model_label, is_file)
        return CalibrationData(source, specs, path, source.count(), True, num_samples)

    if hasattr(calibration, "get_next") and callable(calibration.get_next) \
            and not isinstance(calibration, Mapping):
        reader = calibration
        name = type(reader).__name__

        def produce():
            index = 0
            while True:
                item = reader.get_next()
                if item is None:
                    return
                yield f"sample {index}", item, False
                index += 1

        rewind = getattr(reader, "rewind", None)
        rewind = rewind if callable(rewind) else None
        return CalibrationData(produce, specs, f"reader {name}", _safe_len(reader),
                               rewind is not None, num_samples, rewind=rewind)

    if isinstance(calibration, Mapping):
        items = [calibration]
        return CalibrationData(lambda: ((f"sample {i}", x, False) for i, x in enumerate(items)),
                               specs, "dict", 1, True, num_samples)
    if isinstance(calibration, np.ndarray):
        array = calibration
        return CalibrationData(lambda: iter([("array", array, True)]), specs,
                               f"array {_fmt_shape(array.shape)}", None, True, num_samples)
    try:
        iter(calibration)
    except TypeError:
        raise ArgumentError(
            f"calibration data must be a directory, an iterable of feed dicts or a reader with "
            f"get_next(), got a {type(calibration).__name__}") from None
    once = iter(calibration) is calibration  # a generator or iterator: one pass only
    source = calibration
    kind = type(source).__name__
    total = _safe_len(source)
    desc = f"{kind} of {total} items" if total is not None else kind
    return CalibrationData(lambda: ((f"sample {i}", x, False) for i, x in enumerate(source)),
                           specs, desc, total, not once, num_samples)

