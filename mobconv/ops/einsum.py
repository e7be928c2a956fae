"""Einsum (ONNX opset 12): a sum of products over labelled axes.

The equation is "term,term,...->out" (spaces ignored); each term names its
operand's axes with letters, "..." stands for the remaining (leading)
axes, which broadcast numpy-style across operands. A letter repeated in one
term takes the diagonal; letters missing from the output are summed. Without
"->" the output is "..." then the letters used exactly once, alphabetically.
float16/bfloat16 compute in float32.
"""
import numpy as np

from .registry import Attr, AttrKind, broadcast_shapes, op
from .shape_ops import fmt_shape


def parse_equation(equation, ranks, fail):
    """(terms, out): per operand the list of labels, with ellipsis axes spelled
    '0', '1', ... (right-aligned, shared by all operands), and the output's labels."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise fail(f"equation {equation!r} names {len(terms)} operand(s) but there are "
                   f"{len(ranks)}")

    def letters(term):
        body = term.replace("...", "")
        if not all(c.isalpha() for c in body) or term.count("...") > 1:
            raise fail(f"equation {equation!r}: term {term!r} must be letters and at most "
                       "one '...'")
        return body

    n_ell = 0
    for term, rank in zip(terms, ranks):
        n = rank - len(letters(term))
        if n < 0 or (n > 0 and "..." not in term):
            raise fail(f"equation {equation!r}: term {term!r} does not match an operand "
                       f"of rank {rank}")
        n_ell = max(n_ell, n)
    labelled = []
    for term, rank in zip(terms, ranks):
        n = rank - len(letters(term))
        ell = [str(n_ell - n + k) for k in range(n)]
        head, _, tail = term.partition("...")
        labelled.append(list(head) + (ell if "..." in term else []) + list(tail))
    ell_all = [str(k) for k in range(n_ell)]
    if arrow:
        letters(rhs)
        head, _, tail = rhs.partition("...")
        out = list(head) + (ell_all if "..." in rhs else []) + list(tail)
        known = {c for t in labelled for c in t}
        for c in out:
            if c not in known and not c.isdigit():
                raise fail(f"equation {equation!r}: output letter {c!r} is not in any input")
        if len(set(out)) != len(out):
            raise fail(f"equation {equation!r}: the output repeats a letter")
    else:
        counts = {}
        for t in terms:
            for c in t.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        out = ell_all + sorted(c for c, k in counts.items() if k == 1)
    return labelled, out


def _einsum_infer(ctx):
    shapes = [tuple(s) for s in (ctx.shape(i) for i in range(len(ctx.inputs)))]
    terms, out = parse_equation(ctx.attrs["equation"], [len(s) for s in shapes], ctx.error)
    sizes = {}
    for term, shape in zip(terms, shapes):
        for label, d in zip(term, shape):
            sizes.setdefault(label, []).append((d,))
    dims = {}
    for label, ds in sizes.items():
        if label.isdigit():
            dims[label] = broadcast_shapes(*ds, ctx=ctx)[0]
        else:
            ints = {d[0] for d in ds if isinstance(d[0], int)}
            if len(ints) > 1:
                raise ctx.error(f"letter {label!r} has different sizes {sorted(ints)} in "
                                f"operands {', '.join(fmt_shape(s) for s in shapes)}")
            dims[label] = ints.pop() if ints else ds[0][0]
    return [(ctx.dtype(0), tuple(dims[c] for c in out))]


@op("Einsum", inputs=["Inputs*"], outputs=["Output"],
    attrs=[Attr("equation", AttrKind.STRING)],
    infer=_einsum_infer)
def einsum(*inputs, equation):
    """numpy.einsum(equation, *inputs) in the inputs' dtype (one dtype for all)."""
    dtype = inputs[0].dtype
    wide = [x.astype(np.float32) if dtype.name in ("float16", "bfloat16") else x for x in inputs]
    return np.asarray(np.einsum(equation.replace(" ", ""), *wide)).astype(dtype)
