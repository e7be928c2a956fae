"""Streaming statistics of one activation tensor, and the four ways to turn them into
a clipping range [lo, hi] for int8.

Memory is bounded by construction. A `TensorObserver` holds, whatever the number of
samples: the exact min, max and count of the finite values seen, and a histogram of
at most `num_bins` int64 counts. Nothing of a sample is kept once `update` returns
(large tensors are binned in chunks of CHUNK elements, so the temporaries are
bounded too). The histogram's bins all have width w = 2^e and are anchored at 0:
bin k counts the values in [k*w, (k+1)*w). The histogram spans the bins from
floor(min/w) to floor(max/w); when new data no longer fits in `num_bins` bins, e
grows and groups of 2^d bins merge into one (exact: k -> floor(k / 2^d)). e is always
the smallest exponent that fits every value seen (and keeps bin indices below
2^40), and bin assignment (floor(x / 2^e), a power-of-two scaling) is exact, so the
final histogram is identical however the data was split into batches, and in
whatever order the batches came. Zero is always a bin edge: a ReLU output's
range starts exactly at 0. Each bin also keeps the float64 sums of u and u^2 (u the
position of a value inside its bin, merged exactly when bins merge): mse's final
choice uses them, so it is reproducible for the same batches in the same order (and
equal up to float rounding of those sums otherwise).

Methods (`choose_range`):
- minmax: [min, max] seen (widened to include 0).
- percentile: lo at the (100-p)-th percentile, hi at the p-th (each tail clipped on
  its own side; bin edges, so never inside a bin).
- entropy: TensorRT's KL-divergence calibration on the histogram of |x|: the
  threshold t whose clipped histogram (outliers folded into the last bin) diverges
  least from its 128-level quantization; thresholds are whole groups of bins (with
  unequal groups a lone spike made the divergence jump between neighbours).
- mse: the range minimising the expected squared error of quantize-dequantize with
  256 levels over [lo, hi] (rounding noise s^2/12 inside, the clipping error
  integrated exactly over each bin outside, values uniform within a bin): a
  symmetric search |x| <= t over the bin edges, then hi and lo refined one at a
  time; the last choice, among the candidates near that one, a coarse sweep and
  the full range, is by the error computed exactly from the per-bin moments
  (_exact_sq_error); `symmetric=True` minimises the error of the zero-point-0 grid.

Ranges have the shape [max(min, -t), min(max, t)], so a one-signed tensor keeps its
exact zero end and only its tail is clipped. Exact zeros, and values exactly at the
min or max seen (ReLU6 saturating at 6), are on the grid of a range that holds them:
they count as error-free (mse) or as no divergence (entropy).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

CHUNK = 1 << 20  # elements binned at a time (bounds the float64/int64 temporaries)
INDEX_BITS = 40  # bin indices stay below 2^40 in magnitude
KL_LEVELS = 128  # TensorRT's number of quantized bins
LEVELS = 256  # int8 values over [lo, hi] (asymmetric)


class TensorObserver:
    """min/max/count and a fixed-size power-of-two-width histogram of one tensor."""

    __slots__ = ("num_bins", "exp", "start", "counts", "u1", "u2", "min", "max", "count",
                 "zeros", "at_min", "at_max", "nonfinite")

    def __init__(self, num_bins: int = 2048):
        self.num_bins = int(num_bins)
        self.exp: Optional[int] = None  # bin width 2^exp
        self.start = 0  # index of counts[0]'s bin
        self.counts: Optional[np.ndarray] = None
        # per bin, the sums of u and u^2, u = (x - k*w) / w in [0, 1) the position of a
        # value inside its bin k (float64: exact results need the same batches in the
        # same order; the counts above are exact under any split)
        self.u1: Optional[np.ndarray] = None
        self.u2: Optional[np.ndarray] = None
        self.min = math.inf
        self.max = -math.inf
        self.count = 0
        self.zeros = 0  # exact zeros (ReLU outputs): on every grid, no error
        self.at_min = 0  # values exactly at the min / max seen (ReLU6 saturating at 6):
        self.at_max = 0  # no error when the range ends exactly there
        self.nonfinite = 0

    # ---- updating ---------------------------------------------------------

    def _needed_exp(self) -> int:
        """Smallest e with floor(max/2^e) - floor(min/2^e) < num_bins and indices < 2^40."""
        absmax = max(abs(self.min), abs(self.max))
        e = -1000 if absmax == 0 else math.frexp(absmax)[1] - INDEX_BITS
        span = self.max - self.min
        if span > 0:
            e = max(e, math.frexp(span / self.num_bins)[1] - 2)
        while math.floor(math.ldexp(self.max, -e)) - math.floor(math.ldexp(self.min, -e)) \
                >= self.num_bins:
            e += 1
        return e

    def _coarsen(self, d: int) -> None:
        """Merge groups of 2^d bins (bin k -> floor(k / 2^d))."""
        if d <= 0:
            return
        old = np.arange(self.start, self.start + len(self.counts), dtype=np.int64)
        new = old >> min(d, 62)
        size = int(new[-1] - new[0]) + 1
        merged = np.zeros(size, dtype=np.int64)
        np.add.at(merged, new - new[0], self.counts)
        # u' = (u + j) / 2^d with j = k - k' * 2^d the old bin's place in the new one
        j = (old - (new << min(d, 62))).astype(np.float64)
        c = self.counts.astype(np.float64)
        f = math.ldexp(1.0, -d)
        u1 = np.zeros(size)
        u2 = np.zeros(size)
        np.add.at(u1, new - new[0], (self.u1 + c * j) * f)
        np.add.at(u2, new - new[0], (self.u2 + 2.0 * j * self.u1 + c * j * j) * (f * f))
        self.start, self.counts, self.u1, self.u2 = int(new[0]), merged, u1, u2
        self.exp += d

    def update(self, array) -> None:
        x = np.asarray(array).reshape(-1)
        if x.size == 0:
            return
        finite = np.isfinite(x)
        if not finite.all():
            self.nonfinite += int(x.size - np.count_nonzero(finite))
            x = x[finite]
            if x.size == 0:
                return
        x_min, x_max = float(x.min()), float(x.max())
        if x_min < self.min:
            self.min, self.at_min = x_min, int(np.count_nonzero(x == x_min))
        elif x_min == self.min:
            self.at_min += int(np.count_nonzero(x == x_min))
        if x_max > self.max:
            self.max, self.at_max = x_max, int(np.count_nonzero(x == x_max))
        elif x_max == self.max:
            self.at_max += int(np.count_nonzero(x == x_max))
        self.count += int(x.size)
        self.zeros += int(x.size - np.count_nonzero(x))
        need = self._needed_exp()
        if self.counts is None:
            self.exp = need
            self.start = math.floor(math.ldexp(self.min, -need))
            self.counts = np.zeros(1, dtype=np.int64)
            self.u1, self.u2 = np.zeros(1), np.zeros(1)
        elif need > self.exp:
            self._coarsen(need - self.exp)
        lo_k = math.floor(math.ldexp(self.min, -self.exp))
        hi_k = math.floor(math.ldexp(self.max, -self.exp))
        if lo_k < self.start or hi_k >= self.start + len(self.counts):
            at = slice(self.start - lo_k, self.start - lo_k + len(self.counts))
            grown = np.zeros(hi_k - lo_k + 1, dtype=np.int64)
            grown[at] = self.counts
            g1, g2 = np.zeros(len(grown)), np.zeros(len(grown))
            g1[at], g2[at] = self.u1, self.u2
            self.start, self.counts, self.u1, self.u2 = lo_k, grown, g1, g2
        scale = math.ldexp(1.0, -self.exp)
        for i in range(0, x.size, CHUNK):
            chunk = x[i:i + CHUNK].astype(np.float64)
            chunk *= scale
            floor = np.floor(chunk)
            chunk -= floor  # u, exact (a power-of-two scaling minus an integer)
            index = floor.astype(np.int64)
            index -= self.start
            n = len(self.counts)
            self.counts += np.bincount(index, minlength=n)
            self.u1 += np.bincount(index, weights=chunk, minlength=n)
            self.u2 += np.bincount(index, weights=chunk * chunk, minlength=n)

    # ---- reading ------------------------------------------------------------

    @property
    def width(self) -> float:
        return math.ldexp(1.0, self.exp)

    def edges(self) -> np.ndarray:
        """The len(counts) + 1 bin edges (float64)."""
        return np.arange(self.start, self.start + len(self.counts) + 1, dtype=np.float64) * self.width


# ---- choosing a range -----------------------------------------------------


def _percentile_range(counts, edges, vmin, vmax, p: float) -> tuple:
    total = counts.sum()
    cdf = np.cumsum(counts)
    tail = total * (100.0 - p) / 100.0
    # hi: upper edge of the first bin where the count at or below reaches total - tail
    i_hi = int(np.searchsorted(cdf, total - tail, side="left"))
    hi = min(float(edges[min(i_hi, len(counts) - 1) + 1]), vmax)
    # lo: lower edge of the first bin where the count at or below exceeds tail
    i_lo = int(np.searchsorted(cdf, tail, side="right"))
    lo = max(float(edges[min(i_lo, len(counts) - 1)]), vmin)
    return lo, hi


def _sq_error_table(counts, edges, levels: int = LEVELS, at_ends=(0, 0)):
    """A function err(i, j, lo, hi) -> expected total squared quantize-dequantize error
    of the histogram for the range [lo, hi], where bins i..j-1 lie inside it, bins
    below i under lo and bins from j on above hi (arrays, one entry per candidate);
    O(1) per candidate from prefix sums.

    Values inside the range: rounding noise s^2/12 each (s = (hi - lo) / (levels - 1),
    the uniform-noise model, accurate when bins are narrower than s; exact zeros are
    left out of `counts` by the caller, zero being on the grid). Values outside: the
    clipping error, integrated exactly over each bin for values spread uniformly in
    it: E[(x - h)^2] = (m - h)^2 + w^2/12 for a bin of centre m and width w, summed
    with prefix sums of c, c*m and c*(m^2 + w^2/12). at_ends: how many values sit
    exactly on the first and last edge; inside a range that ends there they are on
    the grid (no error).
    """
    c = counts.astype(np.float64)
    m = (edges[:-1] + edges[1:]) / 2.0
    w2 = (edges[1:] - edges[:-1]) ** 2 / 12.0
    zero, n = np.zeros(1), len(counts)
    s0 = np.concatenate([zero, np.cumsum(c)])
    s1 = np.concatenate([zero, np.cumsum(c * m)])
    s2 = np.concatenate([zero, np.cumsum(c * (m * m + w2))])

    def err(i, j, lo, hi):
        step = (hi - lo) / (levels - 1)
        exact = np.where(np.asarray(i) == 0, at_ends[0], 0) + np.where(np.asarray(j) == n, at_ends[1], 0)
        inside = (s0[j] - s0[i] - exact) * step * step / 12.0
        a0, a1, a2 = s0[-1] - s0[j], s1[-1] - s1[j], s2[-1] - s2[j]
        above = a2 - 2.0 * hi * a1 + hi * hi * a0
        below = s2[i] - 2.0 * lo * s1[i] + lo * lo * s0[i]
        return inside + np.maximum(above, 0.0) + np.maximum(below, 0.0)

    return err


def _exact_sq_error(obs: "TensorObserver", edges, los, his, levels: int = LEVELS) -> np.ndarray:
    """Total squared quantize-dequantize error of the data seen, for each candidate range
    (los[k], his[k]) on the grid lo + m*s, s = (hi - lo) / (levels - 1).

    Exact, from each bin's count and first two moments, for every bin whose values all
    meet the same fate: clipped to hi (the bin lies above hi), clipped to lo, or
    rounded to one grid point g (the bin lies within one rounding cell): sum (x - h)^2 =
    S2 + 2 (e - h) S1 + c (e - h)^2 with S1, S2 the sums of (x - e), (x - e)^2 over the
    bin of lower edge e. That is what the s^2/12 model of _sq_error_table gets wrong
    for data bunched inside bins narrower than a step (softmax probabilities a hair
    below 1, values a fraction of a step from 0). A bin straddling a rounding boundary
    is integrated for values spread uniformly in it: G(x) = integral from lo to x of
    e(u)^2 = m*s^3/12 + d^3/3 inside (m the nearest grid index, d = x - lo - m*s),
    + (x - hi)^3/3 above, - (lo - x)^3/3 below; the bin adds c (G(b) - G(a)) / (b - a).
    Exact zeros and the values exactly at the min/max count as the points they are."""
    w = obs.width
    counts = _without_zeros(obs).astype(np.float64)
    u1, u2 = obs.u1.copy(), obs.u2.copy()
    raw = obs.edges()
    spikes = [(obs.max, obs.at_max)] if obs.min == obs.max else \
        [(obs.min, obs.at_min), (obs.max, obs.at_max)]
    points = []
    for value, n in spikes:
        if n and value != 0:
            k = min(max(int(math.floor(value / w)) - obs.start, 0), len(counts) - 1)
            u = value / w - (obs.start + k)
            counts[k] -= n
            u1[k] -= n * u
            u2[k] -= n * u * u
            points.append((value, n))
    keep = counts > 0
    a, b, c = edges[:-1][keep], edges[1:][keep], counts[keep]
    e = raw[:-1][keep]
    s1, s2 = np.maximum(u1[keep], 0.0) * w, np.maximum(u2[keep], 0.0) * w * w
    lo = np.asarray(los, np.float64)[:, None]
    hi = np.asarray(his, np.float64)[:, None]
    step = np.maximum(hi - lo, 1e-300) / (levels - 1)

    def G(x):
        v = np.clip(x, lo, hi) - lo
        m = np.floor(v / step + 0.5)
        d = v - m * step
        g = m * step ** 3 / 12.0 + d ** 3 / 3.0
        g += np.maximum(x - hi, 0.0) ** 3 / 3.0
        g -= np.maximum(lo - x, 0.0) ** 3 / 3.0
        return g

    def point(x):
        q = lo + step * np.round((np.clip(x, lo, hi) - lo) / step)
        return (x - q) ** 2

    m_a = np.floor((a - lo) / step + 0.5)
    m_b = np.floor((b - lo) / step + 0.5)
    above, below = a >= hi, b <= lo
    one_cell = (a >= lo) & (b <= hi) & (m_a == m_b)
    h = np.where(above, hi, np.where(below, lo, lo + m_a * step))
    exact = np.maximum(s2 + 2.0 * (e - h) * s1 + c * (e - h) ** 2, 0.0)
    width = b - a
    spread = np.where(width > 0, (G(b) - G(a)) * (c / np.where(width > 0, width, 1.0)),
                      c * point(a))
    err = np.where(above | below | one_cell, exact, spread).sum(axis=1)
    for value, n in points:
        err += n * point(np.array([value]))[:, 0]
    return err


def _exact_pick(obs, edges, los, his, levels: int = LEVELS) -> int:
    """Index of the candidate with the least exact error (blocks of 64: bounded memory)."""
    err = np.concatenate([_exact_sq_error(obs, edges, los[k:k + 64], his[k:k + 64], levels)
                          for k in range(0, len(los), 64)])
    return int(np.argmin(err))


def _near(best: int, lo: int, hi: int, n: int) -> np.ndarray:
    """Indices in [lo, hi]: within 16 of `best`, every n/32-th, and both ends."""
    idx = np.concatenate([np.arange(best - 16, best + 17), np.arange(lo, hi + 1, max(1, n // 32)),
                          [lo, hi]])
    return np.unique(idx[(idx >= lo) & (idx <= hi)])


def _without_zeros(obs: "TensorObserver") -> np.ndarray:
    """The counts with exact zeros taken out (zero is on every grid: no error)."""
    counts = obs.counts.copy()
    k = -obs.start  # the bin [0, w)
    if 0 <= k < len(counts):
        counts[k] -= obs.zeros
    return counts


def _tight_edges(obs: "TensorObserver") -> np.ndarray:
    """Bin edges with the outer two moved to the min and max seen."""
    edges = obs.edges()
    edges[0], edges[-1] = obs.min, obs.max
    return edges


def _mse_symmetric(obs: TensorObserver, counts, edges) -> tuple:
    """The t minimising the error on the symmetric grid [-t, t] (zero point 0, 255
    levels, scale t/127), t on the bin grid; returned clipped to the values seen."""
    n = len(counts)
    err = _sq_error_table(_without_zeros(obs), edges, levels=255)
    k0 = -obs.start
    r = np.unique(np.concatenate([np.arange(1, n + 1) - k0, k0 - np.arange(0, n)]))
    r = r[r >= 1]
    i, j = np.clip(k0 - r, 0, n), np.clip(k0 + r, 0, n)
    t = r * obs.width
    best = int(np.argmin(err(i, j, -t, t)))
    # exact stage: thresholds near the fast choice, a coarse sweep, and max|x| itself
    near = r[_near(best, 0, len(r) - 1, len(r))] * obs.width
    tmax = max(-obs.min, obs.max)
    ts = np.unique(np.concatenate([near[near < tmax], [tmax]]))
    best_t = float(ts[_exact_pick(obs, edges, -ts, ts, levels=255)])
    return -best_t, best_t


def _exact_ends(obs: TensorObserver) -> tuple:
    """Values exactly at the min and at the max that a range ending there puts on its
    grid (not counted twice with the zeros, and only ends that can be range ends)."""
    return (obs.at_min if obs.min < 0 else 0, obs.at_max if obs.max > 0 else 0)


def _mse_range(obs: TensorObserver, counts, edges) -> tuple:
    """Symmetric search |x| <= t over the bin edges, then hi and lo refined in turn."""
    n = len(counts)
    err = _sq_error_table(_without_zeros(obs), edges, at_ends=_exact_ends(obs))
    k0 = -obs.start  # index of the edge at 0 (outside [1, n-1] for one-signed data)
    if k0 <= 0:  # all values >= 0: lo = 0, search hi
        j = np.arange(1, n + 1)
        e = err(np.zeros_like(j), j, 0.0, edges[j])
        js = _near(int(j[int(np.argmin(e))]), 1, n, n)
        return 0.0, float(edges[js[_exact_pick(obs, edges, np.zeros(len(js)), edges[js])]])
    if k0 >= n:  # all values < 0: hi = 0, search lo
        i = np.arange(0, n)
        e = err(i, np.full_like(i, n), edges[i], 0.0)
        is_ = _near(int(i[int(np.argmin(e))]), 0, n - 1, n)
        return float(edges[is_[_exact_pick(obs, edges, edges[is_], np.zeros(len(is_)))]]), 0.0
    r = np.arange(1, max(k0, n - k0) + 1)
    i = np.maximum(k0 - r, 0)
    j = np.minimum(k0 + r, n)
    best = int(np.argmin(err(i, j, edges[i], edges[j])))
    bi, bj = int(i[best]), int(j[best])
    js, is_ = np.arange(k0 + 1, n + 1), np.arange(0, k0)
    for _ in range(2):
        bj = int(js[np.argmin(err(np.full_like(js, bi), js, edges[bi], edges[js]))])
        bi = int(is_[np.argmin(err(is_, np.full_like(is_, bj), edges[is_], edges[bj]))])
    # exact stage: each end near the fast choice (and a coarse sweep), the other fixed
    js = _near(bj, k0 + 1, n, n)
    bj = int(js[_exact_pick(obs, edges, np.full(len(js), edges[bi]), edges[js])])
    is_ = _near(bi, 0, k0 - 1, n)
    bi = int(is_[_exact_pick(obs, edges, edges[is_], np.full(len(is_), edges[bj]))])
    return float(edges[bi]), float(edges[bj])


def _kl(counts: np.ndarray, a: int, b: int) -> float:
    """TensorRT's divergence of the clipped histogram counts[a:b] (outliers folded into
    the end bins) from its KL_LEVELS-level quantization."""
    sliced = counts[a:b].astype(np.float64)
    p = sliced.copy()
    p[0] += counts[:a].sum()
    p[-1] += counts[b:].sum()
    n = b - a
    bounds = (np.arange(KL_LEVELS + 1) * n) // KL_LEVELS
    nonzero = p != 0
    group_sum = np.add.reduceat(sliced, bounds[:-1])
    group_nz = np.add.reduceat(nonzero.astype(np.float64), bounds[:-1])
    per_bin = np.divide(group_sum, group_nz, out=np.zeros_like(group_sum), where=group_nz > 0)
    q = np.repeat(per_bin, np.diff(bounds)) * nonzero
    p_sum, q_sum = p.sum(), q.sum()
    if q_sum == 0:
        return math.inf
    p /= p_sum
    q /= q_sum
    mask = p > 0
    q_m = q[mask]
    bad = q_m == 0
    if bad.any():  # a value the quantization cannot represent: smoothed as TensorRT does
        q_m = np.where(bad, 1e-4 * q_m[~bad].min() if (~bad).any() else 1e-12, q_m)
    return float(np.sum(p[mask] * np.log(p[mask] / q_m)))


def _abs_histogram(obs: TensorObserver, counts) -> tuple:
    """(counts of |x|, bin width) on the same grid: bin k >= 0 holds [k*w, (k+1)*w) and
    its mirror bin -k-1, [-(k+1)*w, -k*w) (bins are anchored at 0, so the fold is exact
    up to which side of an edge a value on it counts)."""
    k = np.arange(obs.start, obs.start + len(counts), dtype=np.int64)
    folded = np.where(k >= 0, k, -k - 1)
    # bins far from 0 (all values in [0.2, 0.9]): merge 2^d bins so that at most
    # num_bins span [0, max|x|], the range the threshold search covers
    d = max(0, int(folded.max()).bit_length() - (obs.num_bins - 1).bit_length())
    folded >>= d
    out = np.zeros(int(folded.max()) + 1, dtype=np.int64)
    np.add.at(out, folded, counts)
    return out, obs.width * 2 ** d


def _entropy_range(obs: TensorObserver, counts, edges) -> tuple:
    """TensorRT's calibration on the histogram of |x|: the threshold t whose clipped
    histogram (outliers folded into the last bin) diverges least from its KL_LEVELS
    quantization. Thresholds are whole groups (multiples of KL_LEVELS bins), so every
    quantized level merges the same number of bins: with any other width the groups
    differ by a bin and a lone spike (a value many samples share exactly) lands in a
    small or a large group by chance, which makes the divergence jump between
    neighbouring thresholds."""
    vmin, vmax = min(obs.min, 0.0), max(obs.max, 0.0)
    hist, width = _abs_histogram(obs, counts)
    n = len(hist)
    if n < 2 * KL_LEVELS:
        return vmin, vmax
    at_end = obs.at_max if obs.max >= -obs.min else obs.at_min  # on the grid when t = max|x|
    best, best_t = math.inf, max(-vmin, vmax)
    for b in range(KL_LEVELS, n + KL_LEVELS, KL_LEVELS):
        b = min(b, n)
        c = hist
        if b == n and at_end:
            c = hist.copy()
            c[-1] -= at_end
        d = _kl(c, 0, b)
        if d < best:
            best, best_t = d, (b * width if b < n else max(-vmin, vmax))
    return max(vmin, -best_t), min(vmax, best_t)


def choose_range(obs: TensorObserver, method: str, percentile: float = 99.99,
                 symmetric: bool = False) -> tuple:
    """(lo, hi) with lo <= 0 <= hi for the observed tensor, by `method`. `symmetric`:
    the range will be used as [-t, t] with t = max(-lo, hi) (zero point 0), which only
    the mse method takes into account (it then optimises the error of that grid)."""
    vmin, vmax = min(obs.min, 0.0), max(obs.max, 0.0)
    if obs.counts is None or method == "minmax" or vmin == vmax:
        return vmin, vmax
    counts, edges = obs.counts, _tight_edges(obs)
    if method == "percentile":
        lo, hi = _percentile_range(counts, edges, vmin, vmax, percentile)
    elif method == "entropy":
        lo, hi = _entropy_range(obs, _without_zeros(obs), edges)
    elif method == "mse":
        lo, hi = (_mse_symmetric if symmetric else _mse_range)(obs, counts, edges)
    else:
        raise ValueError(f"unknown method {method!r}")
    return min(max(lo, vmin), 0.0), max(min(hi, vmax), 0.0)


def clipped_fraction(obs: TensorObserver, lo: float, hi: float) -> float:
    """Fraction of the values seen in bins entirely outside [lo, hi] (0 when not clipped)."""
    if obs.counts is None or obs.count == 0:
        return 0.0
    edges = obs.edges()
    below = int(obs.counts[edges[1:] <= lo].sum()) if lo > obs.min else 0
    above = int(obs.counts[edges[:-1] >= hi].sum()) if hi < obs.max else 0
    return (below + above) / obs.count
