"""Faster solvers for the fast engine's fields: the same equations as ``abm.fields``, solved
the same way, with less work per hour.

- :class:`LinearFields` advances several :class:`abm.fields.Field` objects (the chemokine and
  the suppressive factor) together: their sources go through one batched DCT and their spectra
  through one batched inverse, and each field's spectrum is kept from the last hour instead of
  being transformed again (the exact update is linear in the spectrum: ``spectrum * growth +
  gain * DCT(source)``). Two transforms per hour for both fields instead of six. A field whose
  concentration and source are both zero is skipped (it stays exactly zero). The spectra,
  sources and transforms are float32 (the concentrations the model reads stay float64): the
  results differ from ``Field.step`` by float32 round-off, a relative 1e-7 to 1e-6 (DUCC's
  float32 transforms take 0.65x the time of float64 ones at 100x100).
- :func:`accelerate` turns an :class:`abm.fields.ReactionField` (oxygen, IFN-gamma) into a
  :class:`FastReactionField`: the same backward-Euler system, the same conjugate gradients with
  the same preconditioner and stopping rule, with (1) the preconditioner's solves in float32
  and by half the transforms (one 1-D transform pair along y and tridiagonal solves along x,
  the same matrix inverse as the 2-D pair; the iterate, residual and stopping test stay
  float64, so the converged field meets the same tolerance), (2) the Woodbury correction for
  pinned sites (vessels) applied inside that solve, between the transforms (a second
  elimination instead of a second spectral solve per iteration), (3) the operator and the
  vector updates as fused numba loops (grid sums in four partial sums), and (4) a field whose
  concentration, source and boundary level are all zero skipped (the solution is exactly
  zero).

Every hour's solve is compiled whole: the transforms are called from numba through rocket-fft
(scipy.fft's transforms for numba, the same DUCC library), so the conjugate gradients, the
preconditioner and the linear fields' update run without returning to Python (30-40% less time
per hour than the same steps driven from Python, at 100x100).

``tests/test_fast_fields.py`` compares each against the Mesa engine's solvers on the same
sources (relative tolerance stated there).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import rocket_fft  # noqa: F401  (registers scipy.fft's transforms for numba's compiled code)
import scipy.fft
from scipy import fft

from abm.fields import Field, ReactionField


class LinearFields:
    """Advance ``fields`` (``abm.fields.Field`` objects sharing one grid) together.

    Each field's ``data`` stays the concentration the rest of the model reads; the spectrum of
    each is kept between hours, so ``data`` must be written only through :meth:`step` (nothing
    else in the model writes these fields).
    """

    workers = 1  # threads per transform (FastTumorModel.use_threads); results do not depend on it

    def __init__(self, fields: list[Field]) -> None:
        self.fields = list(fields)
        self.growth = np.stack([f._growth for f in self.fields]).astype(np.float32)
        self.gain = np.stack([f._source_gain for f in self.fields]).astype(np.float32)
        for i, f in enumerate(self.fields):  # share the tables rather than keep two copies
            f._growth, f._source_gain = self.growth[i], self.gain[i]
        self.spectra = np.stack([fft.dctn(f.data.astype(np.float32), type=2, norm="ortho")
                                 for f in self.fields])
        self.zero = [not f.data.any() for f in self.fields]
        # the fields' concentrations as one array (each field's ``data`` a view of it), and a
        # buffer for their sources that a caller may fill in place (``sources[i]``): the
        # compiled hour reads one and writes the other with no copies
        self.data = np.stack([f.data for f in self.fields])
        for i, f in enumerate(self.fields):
            f.data = self.data[i]
        self.sources = np.zeros(self.data.shape, dtype=np.float32)

    def step(self, sources: list[np.ndarray | None]) -> None:
        """``Field.step(source)`` for every field, in one batched transform pair."""
        if not any(self.zero) and all(source is not None for source in sources):
            # the usual hour, no scan of the sources needed: a source that is all zero adds
            # gain * DCT(0) = 0 to its spectrum, which is what skipping it would give
            self._step_all(sources)
            return
        active, stack = [], []
        for i, source in enumerate(sources):
            has_source = source is not None and bool(source.any())
            if self.zero[i] and not has_source:
                continue  # zero stays zero
            active.append(i)
            stack.append(source if has_source else None)
        if not active:
            return
        with_source = [j for j, s in enumerate(stack) if s is not None]
        every = len(active) == len(self.fields)
        if every and len(with_source) == len(self.fields):  # the usual hour: one compiled call
            self._step_all(stack)
            return
        idx = np.asarray(active)
        spectra = self.spectra if every else self.spectra[idx]
        spectra *= self.growth if every else self.growth[idx]
        if with_source:
            src = np.stack([stack[j] for j in with_source]).astype(np.float32, copy=False)
            transformed = fft.dctn(src, type=2, norm="ortho", axes=(1, 2), overwrite_x=True)
            if len(with_source) == len(self.fields):
                transformed *= self.gain
                spectra += transformed
            else:
                spectra[with_source] += self.gain[idx[with_source]] * transformed
        if not every:
            self.spectra[idx] = spectra
        result = fft.idctn(spectra, type=2, norm="ortho", axes=(1, 2))
        np.maximum(result, 0.0, out=result)  # as Field.step: round-off can leave -1e-17
        for j, i in enumerate(active):
            self.fields[i].data[...] = result[j]
            self.zero[i] = False

    def _step_all(self, sources: list[np.ndarray]) -> None:
        """Every field with its source, in one compiled call (:func:`_linear_step`)."""
        for j, source in enumerate(sources):
            if not np.shares_memory(source, self.sources[j]):
                self.sources[j] = source
        _linear_step(self.spectra, self.growth, self.gain, self.sources, self.data,
                     self.workers)
        self.zero = [False] * len(self.fields)


@numba.njit(cache=True, nogil=True)
def _linear_step(spectra, growth, gain, sources, result, workers):  # pragma: no cover
    """``LinearFields.step`` when every field has a source: spectra = spectra * growth +
    gain * DCT(sources); result = max(inverse DCT(spectra), 0). ``sources`` is overwritten."""
    transformed = scipy.fft.dctn(sources, type=2, axes=(1, 2), norm="ortho", overwrite_x=True,
                                 workers=workers)
    fs, fg, fa, ft = spectra.ravel(), growth.ravel(), gain.ravel(), transformed.ravel()
    for i in range(fs.size):
        fs[i] = fs[i] * fg[i] + fa[i] * ft[i]
    inverse = scipy.fft.idctn(spectra, type=2, axes=(1, 2), norm="ortho", workers=workers)
    fr, fi = result.ravel(), inverse.ravel()
    for i in range(fr.size):
        fr[i] = fi[i] if fi[i] > 0.0 else 0.0  # as Field.step: round-off can leave -1e-17


# --- fused loops for the conjugate gradients ---------------------------------------------
# Sums over the grid keep four partial sums (an element joins the one of its index mod 4: its
# flat index, or its column for a sum taken row by row), added as (s0 + s1) + (s2 + s3): the
# additions no longer wait on each other, so a sum costs what reading its arrays costs (1.9x
# faster than one running sum at 100x100 and 1000x1000). The order is fixed in the code, not
# chosen by the compiler, so a run gives the same numbers on every machine.
@numba.njit(cache=True, inline="always")
def _apply_row(c, diag, d, ghost, x, out):  # pragma: no cover - compiled
    """Row ``x`` of ``ReactionField._apply`` into ``out[x]``: diag * c + D * (4 c -
    neighbours), the ghost outside an edge site being ``ghost / D`` times the site's own
    value (c for zero flux, -c for a level held).

    The edge rows' and edge columns' rule is taken out of the inner loop (which the compiler
    then vectorises); each site's terms are added in the order of a loop with a branch per
    neighbour (up, down, left, right), so the result is that loop's to the bit."""
    w, h = c.shape
    up, up_coef = (c[x - 1], -d) if x > 0 else (c[x], ghost)
    down, down_coef = (c[x + 1], -d) if x < w - 1 else (c[x], ghost)
    row, drow, orow = c[x], diag[x], out[x]
    if h == 1:
        v = row[0]
        orow[0] = ((drow[0] + 4.0 * d) * v + up_coef * up[0] + down_coef * down[0]
                   + ghost * v + ghost * v)
        return
    v = row[0]
    s = (drow[0] + 4.0 * d) * v
    s += up_coef * up[0]
    s += down_coef * down[0]
    s += ghost * v
    s -= d * row[1]
    orow[0] = s
    for y in range(1, h - 1):
        v = row[y]
        s = (drow[y] + 4.0 * d) * v
        s += up_coef * up[y]
        s += down_coef * down[y]
        s -= d * row[y - 1]
        s -= d * row[y + 1]
        orow[y] = s
    v = row[h - 1]
    s = (drow[h - 1] + 4.0 * d) * v
    s += up_coef * up[h - 1]
    s += down_coef * down[h - 1]
    s -= d * row[h - 2]
    s += ghost * v
    orow[h - 1] = s


@numba.njit(cache=True)
def _apply(c, diag, d, sign, out):  # pragma: no cover - compiled
    """``ReactionField._apply``: out = diag * c + D * (4 c - neighbours), with the boundary
    rule (the ghost outside an edge site is c for zero flux, -c for a level held)."""
    for x in range(c.shape[0]):
        _apply_row(c, diag, d, sign * d, x, out)


@numba.njit(cache=True, inline="always")
def _to_partial(j, v, s0, s1, s2):  # pragma: no cover - compiled
    """``v`` added to partial sum ``j`` (0, 1 or 2: an incomplete last group of four)."""
    if j == 0:
        return s0 + v, s1, s2
    if j == 1:
        return s0, s1 + v, s2
    return s0, s1, s2 + v


@numba.njit(cache=True, inline="always")
def _row_products(row, orow, s0, s1, s2, s3):  # pragma: no cover - compiled
    """The products row * orow added to the four partial sums (by column mod 4)."""
    h = row.size
    ends = h - h % 4
    for y in range(0, ends, 4):
        s0 += row[y] * orow[y]
        s1 += row[y + 1] * orow[y + 1]
        s2 += row[y + 2] * orow[y + 2]
        s3 += row[y + 3] * orow[y + 3]
    for y in range(ends, h):
        s0, s1, s2 = _to_partial(y % 4, row[y] * orow[y], s0, s1, s2)
    return s0, s1, s2, s3


@numba.njit(cache=True)
def _apply_dot(c, diag, d, sign, out):  # pragma: no cover - compiled
    """``_apply(c, ...)`` into ``out``, returning the sum of c * out (partial sums by column
    mod 4, each row summed while it is still in cache)."""
    s0 = s1 = s2 = s3 = 0.0
    for x in range(c.shape[0]):
        _apply_row(c, diag, d, sign * d, x, out)
        row, orow = c[x], out[x]
        s0, s1, s2, s3 = _row_products(row, orow, s0, s1, s2, s3)
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True)
def _dot_absmax(r, z):  # pragma: no cover - compiled
    """The sum of r * z (float64, four partial sums) and the largest |z|, in one pass."""
    fr, fz = r.ravel(), z.ravel()
    n = fr.size
    s0 = s1 = s2 = s3 = 0.0
    m0 = m1 = m2 = m3 = np.float32(0.0)
    for i in range(0, n - n % 4, 4):
        z0, z1, z2, z3 = fz[i], fz[i + 1], fz[i + 2], fz[i + 3]
        s0 += fr[i] * np.float64(z0)
        s1 += fr[i + 1] * np.float64(z1)
        s2 += fr[i + 2] * np.float64(z2)
        s3 += fr[i + 3] * np.float64(z3)
        m0 = max(m0, abs(z0))
        m1 = max(m1, abs(z1))
        m2 = max(m2, abs(z2))
        m3 = max(m3, abs(z3))
    for i in range(n - n % 4, n):
        s0, s1, s2 = _to_partial(i % 4, fr[i] * np.float64(fz[i]), s0, s1, s2)
        m0 = max(m0, abs(fz[i]))
    return (s0 + s1) + (s2 + s3), np.float64(max(max(m0, m1), max(m2, m3)))


@numba.njit(cache=True)
def _system_residual(data, uptake, source, has_source, inv_dt, ghost, penalty, pinned_level,
                     pin_mask, d, sign, diag, r, r32):  # pragma: no cover - compiled
    """The backward-Euler system and its first residual, in one pass: ``diag`` = 1/dt +
    uptake (plus the penalty at pinned sites), b = data/dt + ghost + source (plus penalty *
    level at pinned sites), r = b - A data (:func:`_apply_row`), and r as float32 into
    ``r32``. Row by row, each site's values computed as separate passes would compute them."""
    w, h = data.shape
    for x in range(w):
        drow, urow, grow, mrow = diag[x], uptake[x], ghost[x], pin_mask[x]
        for y in range(h):
            dv = inv_dt + urow[y]
            if mrow[y]:
                dv += penalty
            drow[y] = dv
        _apply_row(data, diag, d, sign * d, x, r)  # A data, row x, into r[x]
        rrow, crow, r32row = r[x], data[x], r32[x]
        srow = source[x] if has_source else crow
        for y in range(h):
            bv = inv_dt * crow[y] + grow[y]
            if has_source:
                bv += srow[y]
            if mrow[y]:
                bv += penalty * pinned_level
            v = bv - rrow[y]
            rrow[y] = v
            r32row[y] = v


@numba.njit(cache=True, inline="always")
def _advance_row(x, p, z, alpha, beta, first, i):  # pragma: no cover - compiled
    """Row ``i`` of x += alpha p, then p = z + beta p (p = z on the first iteration)."""
    xrow, prow, zrow = x[i], p[i], z[i]
    if first:
        for y in range(prow.size):
            prow[y] = np.float64(zrow[y])
        return
    for y in range(prow.size):
        v = prow[y]
        xrow[y] += alpha * v
        prow[y] = np.float64(zrow[y]) + beta * v


@numba.njit(cache=True)
def _advance_apply_dot(x, p, z, alpha, beta, first, diag, d, sign,
                       out):  # pragma: no cover - compiled
    """The last iteration's step of the iterate (x += alpha p), the new direction (p = z +
    beta p) and ``_apply_dot(p, ...)`` into ``out``, in one pass: each row of p is made one
    row ahead of the operator, which reads its neighbours. Returns the sum of p * out (partial
    sums by column mod 4, as :func:`_apply_dot`)."""
    w = p.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    _advance_row(x, p, z, alpha, beta, first, 0)
    for i in range(w):
        if i + 1 < w:
            _advance_row(x, p, z, alpha, beta, first, i + 1)
        _apply_row(p, diag, d, sign * d, i, out)
        row, orow = p[i], out[i]
        s0, s1, s2, s3 = _row_products(row, orow, s0, s1, s2, s3)
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True)
def _residual_step(r, ap, alpha, r32):  # pragma: no cover - compiled
    """r -= alpha ap, and r as float32 into ``r32`` (the preconditioner's input)."""
    fr, fap, f32 = r.ravel(), ap.ravel(), r32.ravel()
    for i in range(fr.size):
        v = fr[i] - alpha * fap[i]
        fr[i] = v
        f32[i] = v


# --- the whole conjugate-gradient solve, compiled (transforms through rocket-fft) ---------
NO_PINS, WOODBURY, BLOCK_DIAGONAL = 0, 1, 2
_NO_SOURCE = np.zeros((1, 1))  # stands in for an absent source (not read)
_NO_BASIS = np.zeros((0, 0), dtype=np.float32)  # stands in for the basis without Woodbury


@numba.njit(cache=True, inline="always")
def _along_y(r32, dirichlet, workers):  # pragma: no cover - compiled
    """The sine (DST-II, a level held at the faces) or cosine (DCT-II, zero flux) transform
    along y, orthonormal, consuming ``r32``."""
    if dirichlet:
        return scipy.fft.dst(r32, type=2, axis=1, norm="ortho", overwrite_x=True, workers=workers)
    return scipy.fft.dct(r32, type=2, axis=1, norm="ortho", overwrite_x=True, workers=workers)


@numba.njit(cache=True, inline="always")
def _back_along_y(s, dirichlet, workers):  # pragma: no cover - compiled
    """The inverse of :func:`_along_y`, consuming ``s``."""
    if dirichlet:
        return scipy.fft.idst(s, type=2, axis=1, norm="ortho", overwrite_x=True, workers=workers)
    return scipy.fft.idct(s, type=2, axis=1, norm="ortho", overwrite_x=True, workers=workers)


@numba.njit(cache=True, inline="always")
def _eliminate(s, tri, off):  # pragma: no cover - compiled
    """Solve the tridiagonal systems along x of every y mode (the columns of ``s``) in place,
    from their factors (:func:`_tridiagonal_factors`: ``tri[0]`` the inverse pivots, ``tri[1]``
    the upper factors; ``off`` the off-diagonal, -D); the modes are the inner loop, so the
    elimination runs over whole rows at once."""
    inverse_pivot, upper = tri[0], tri[1]
    w, h = s.shape
    last = tri.shape[1] - 2  # the rows from here to w - 2 share this row's factors
    lower = np.float32(off)
    for j in range(h):
        s[0, j] *= inverse_pivot[0, j]
    for i in range(1, w):
        k = i if i <= last else (last + 1 if i == w - 1 else last)
        for j in range(h):
            s[i, j] = (s[i, j] - lower * s[i - 1, j]) * inverse_pivot[k, j]
    for t in range(w - 1):  # rows w - 2 down to 0 (an ascending counter: the compiler
        i = w - 2 - t       # vectorises this loop, not one over range(w - 2, -1, -1))
        k = min(i, last)
        row, below, factor = s[i], s[i + 1], upper[k]
        for j in range(h):
            row[j] -= factor[j] * below[j]


@numba.njit(cache=True)
def _spectral(r32, tri, off, dirichlet, workers):  # pragma: no cover - compiled
    """``ReactionField._spectral_solve`` in float32, by half the transforms: the sine (DST-II)
    or cosine (DCT-II) transform along y only, then for each y mode the operator along x, a
    tridiagonal matrix (D * -laplacian_x + D * lambda_y + 1/dt + k_ref, the same boundary rows),
    solved by elimination (:func:`_eliminate`), and the inverse transform along y. The same
    matrix inverse as the 2-D transforms, to float32 round-off."""
    s = _along_y(r32, dirichlet, workers)
    _eliminate(s, tri, off)
    return _back_along_y(s, dirichlet, workers)


@numba.njit(cache=True)
def _spectral_pinned(r32, tri, off, dirichlet, px, py, cap, basis,
                     workers):  # pragma: no cover - compiled
    """``ReactionField._precondition`` with the Woodbury correction for the pinned sites, in
    the basis along y: the spectral solve z = M^-1 r, then M^-1 (r - U y) with y = cap z[pins]
    (U puts each y at its pinned site). Both solves share the transform pair: the field at a
    pinned site is a sum over the y modes of the solved row (``basis[y, j]``, the basis
    functions), and U y adds to the pinned rows only, so the correction costs a second
    elimination and two sums of n x height terms instead of a second transform pair."""
    s = _along_y(r32, dirichlet, workers)
    z = s.copy()
    _eliminate(z, tri, off)
    n, h = px.size, s.shape[1]
    at_pins = np.empty(n)
    for k in range(n):
        row, b = z[px[k]], basis[py[k]]
        v = 0.0
        for j in range(h):
            v += np.float64(row[j]) * b[j]
        at_pins[k] = v
    y = cap @ at_pins
    for k in range(n):
        yk = np.float32(y[k])
        row, b = s[px[k]], basis[py[k]]
        for j in range(h):
            row[j] -= yk * b[j]
    _eliminate(s, tri, off)
    return _back_along_y(s, dirichlet, workers)


def _tridiagonal_factors(shape: tuple[int, int], d: float, shift: float,
                         dirichlet: bool) -> np.ndarray:
    """The factors of :func:`_spectral`'s tridiagonal solves, one system per y mode: the
    matrix along x has ``2 D + D lambda_y + shift`` on its diagonal (at the two edge rows
    ``D`` less for zero flux, the cosine basis, or ``D`` more for a level held at the faces,
    the sine basis: the ghost site's rule of ``ReactionField``) and ``-D`` off it, where
    ``-lambda_y`` are the 1-D Laplacian's eigenvalues of ``ReactionField``'s basis along y.
    Elimination without pivoting (the matrix is diagonally dominant), factors in float64, kept
    in float32: (2, rows, height), the inverse pivots and the upper factors. Away from the first
    edge the factors converge (in float32, after about 160 rows for oxygen and 280 for IFN-gamma
    at the model's rates): only the rows up to the first converged one are kept, then the last
    row, which the far edge changes (so 1000 x 1000 keeps 16-28% of the table, the same
    numbers)."""
    w, h = shape
    k = np.arange(1, h + 1) if dirichlet else np.arange(h)
    lam = 4.0 * np.sin(np.pi * k / (2 * h)) ** 2
    diagonal = np.broadcast_to(2.0 * d + d * lam + shift, (w, h)).copy()
    edge = d if dirichlet else -d
    diagonal[0] += edge
    diagonal[-1] += edge
    tri = np.empty((2, w, h))
    pivot = diagonal[0]
    tri[0, 0], tri[1, 0] = 1.0 / pivot, -d / pivot
    for i in range(1, w):
        pivot = diagonal[i] + d * tri[1, i - 1]
        tri[0, i], tri[1, i] = 1.0 / pivot, -d / pivot
    tri = tri.astype(np.float32)
    first = w - 2  # the first row from which every row up to w - 2 is the same
    while first > 0 and np.array_equal(tri[:, first - 1], tri[:, w - 2]):
        first -= 1
    return np.ascontiguousarray(np.concatenate([tri[:, :first + 1], tri[:, w - 1:]], axis=1))


@numba.njit(cache=True)
def _precondition_c(r, r32, tri, off, dirichlet, mode, px, py, cap, basis, inverse_pin_diag,
                    workers):  # pragma: no cover - compiled
    """``ReactionField._precondition`` in float32: the spectral solve, corrected for the
    pinned sites by Woodbury (:func:`_spectral_pinned`), or block-diagonal when there are too
    many pinned sites for Woodbury. ``r32`` is ``r`` as float32, consumed."""
    if mode == BLOCK_DIAGONAL:  # the free sites by the spectral solve, the pinned ones alone
        for k in range(px.size):
            r32[px[k], py[k]] = 0.0
        z = _spectral(r32, tri, off, dirichlet, workers)
        for k in range(px.size):
            z[px[k], py[k]] = r[px[k], py[k]] * inverse_pin_diag
        return z
    if mode == NO_PINS:
        return _spectral(r32, tri, off, dirichlet, workers)
    return _spectral_pinned(r32, tri, off, dirichlet, px, py, cap, basis, workers)


@numba.njit(cache=True, nogil=True)
def _cg(data, uptake, source, has_source, inv_dt, ghost, penalty, pinned_level, d, sign, tol,
        max_iter, tri, dirichlet, mode, px, py, cap, basis, pin_mask, inverse_pin_diag,
        workers):  # pragma: no cover - compiled
    """``ReactionField.step``: the backward-Euler system (diag = 1/dt + uptake, b = data/dt
    + ghost + source, with the penalty at pinned sites) solved by the same preconditioned
    conjugate gradients, warm-started from ``data`` and written back into it (clipped at
    zero); the same iteration and stopping rule (the preconditioned residual below ``tol`` at
    every site). Returns the iterations."""
    diag = np.empty_like(data)
    r = np.empty_like(data)
    r32 = np.empty(data.shape, dtype=np.float32)
    _system_residual(data, uptake, source, has_source, inv_dt, ghost, penalty, pinned_level,
                     pin_mask, d, sign, diag, r, r32)
    x = data  # the iterate, in place: b is made, so the last hour's field is not read again
    z = _precondition_c(r, r32, tri, -d, dirichlet, mode, px, py, cap, basis,
                        inverse_pin_diag, workers)
    rz, zmax = _dot_absmax(r, z)
    p = np.empty_like(data)
    ap = np.empty_like(data)
    alpha = beta = 0.0
    iterations = 0
    while iterations < max_iter and zmax > tol:
        # x gets the last iteration's step here, in the pass that makes the new direction
        alpha = rz / _advance_apply_dot(x, p, z, alpha, beta, iterations == 0, diag, d, sign,
                                        ap)
        _residual_step(r, ap, alpha, r32)  # r32: z's buffer, if z was made in it, is free
        z = _precondition_c(r, r32, tri, -d, dirichlet, mode, px, py, cap, basis,
                            inverse_pin_diag, workers)
        rz_new, zmax = _dot_absmax(r, z)
        beta = rz_new / rz
        rz = rz_new
        iterations += 1
    fx, fp = x.ravel(), p.ravel()
    for i in range(fx.size):  # the last step of the iterate, clipped at zero
        v = fx[i] + alpha * fp[i] if iterations else fx[i]
        fx[i] = v if v > 0.0 else 0.0
    return iterations


class FastReactionField(ReactionField):
    """``ReactionField`` with a cheaper step (see the module docstring); made by
    :func:`accelerate` from a built ``ReactionField``, so construction is the Mesa engine's.
    The whole solve (system, conjugate gradients, preconditioner with its transforms) is one
    compiled call, :func:`_cg`."""

    workers = 1  # threads per transform (FastTumorModel.use_threads); results do not depend on it

    def _prepare(self) -> None:
        self._tri = _tridiagonal_factors(self.shape, self.d, self.inv_dt + self.k_ref,
                                         self._dirichlet)
        self._basis = _NO_BASIS  # made when first needed (Woodbury): height^2 float32
        self._sign = 1.0 if self._dirichlet else -1.0
        self._pins_changed()

    def _pins_changed(self) -> None:
        """The compiled preconditioner's arguments for the current pinned sites."""
        n = len(self._pinned)
        self._px = np.ascontiguousarray(self._pinned[:, 0], dtype=np.intp)
        self._py = np.ascontiguousarray(self._pinned[:, 1], dtype=np.intp)
        self._cap64 = (np.ascontiguousarray(self._cap, dtype=np.float64) if self._cap is not None
                       else np.zeros((0, 0)))
        if not n:
            self._mode = NO_PINS
        elif self._cap is None:
            self._mode = BLOCK_DIAGONAL
        else:
            self._mode = WOODBURY
            if not self._basis.size:  # the basis functions along y (basis[y, j]: mode j at y)
                eye = np.eye(self.shape[1], dtype=np.float32)
                transform = fft.dst if self._dirichlet else fft.dct
                self._basis = np.ascontiguousarray(transform(eye, type=2, axis=1, norm="ortho"))
        self._inverse_pin_diag = 1.0 / (self._PENALTY + 4.0 * self.d)

    def unpin(self, sites: list[tuple[int, int]]) -> None:
        """``ReactionField.unpin`` (the correction rebuilt there), then the compiled
        arguments."""
        super().unpin(sites)
        self._pins_changed()

    def step(self, uptake_per_h: np.ndarray | float, source: np.ndarray | None = None) -> None:
        """``ReactionField.step``: the same system, iteration and stopping rule."""
        has_source = source is not None and bool(source.any())
        level_zero = (not self._dirichlet or self.boundary_level == 0.0) and (
            not len(self._pinned) or self.pinned_level == 0.0)
        if level_zero and not has_source and not self.data.any():
            self.iterations = 0
            return  # nothing to diffuse, nothing made, nothing held: stays exactly zero
        uptake = np.asarray(uptake_per_h, dtype=np.float64)
        if uptake.shape != self.shape or not uptake.flags.c_contiguous:
            uptake = np.ascontiguousarray(np.broadcast_to(uptake, self.shape))
        source = (np.ascontiguousarray(source, dtype=np.float64) if has_source
                  else _NO_SOURCE)
        self.iterations = _cg(self.data, uptake, source, has_source, self.inv_dt, self._ghost,
                              self._PENALTY, float(self.pinned_level), self.d, self._sign,
                              float(self.tol), self.max_iter, self._tri, self._dirichlet,
                              self._mode, self._px, self._py, self._cap64, self._basis,
                              self._pin_mask, self._inverse_pin_diag, self.workers)


def accelerate(field: ReactionField) -> FastReactionField:
    """Make ``field`` (built by ``ReactionField``) a :class:`FastReactionField`, in place."""
    field.__class__ = FastReactionField
    field._prepare()
    return field


@numba.njit(cache=True)
def _losses(kind, o2_uptake, ifng_decay, ifng_uptake, o2_loss, ifng_loss):  # pragma: no cover
    """The oxygen loss rate by occupant (``_o2_uptake[kind]``) and IFN-gamma's (decay, plus
    uptake at cancer cells), in one pass."""
    w, h = kind.shape
    for x in range(w):
        for y in range(h):
            k = kind[x, y]
            o2_loss[x, y] = o2_uptake[k]
            ifng_loss[x, y] = ifng_decay + (ifng_uptake if k == 1 else 0.0)  # Kind.CANCER


# Per-site passes that divide are compiled with ``error_model="numpy"``: numba's default
# (Python's) checks every float division for a zero divisor, to raise ZeroDivisionError, and
# that branch keeps the compiler from vectorising the loop (``_saturate``: 13.9 -> 3.4 us at
# 100x100). The quotients are the same to the bit; a zero divisor gives inf or nan, as numpy
# does in the Mesa engine, instead of an exception.


@numba.njit(cache=True, error_model="numpy")
def _oxygen_effects(o2, low, high, thr, worst, necrosis_time_h, growth,
                    necrosis):  # pragma: no cover - compiled
    """``TumorModel._update_oxygen_effects``: division factor and necrosis probability (two
    loops: the first, without branches, is vectorised)."""
    fo, fg, fn = o2.ravel(), growth.ravel(), necrosis.ravel()
    for i in range(fo.size):
        fg[i] = min(max((fo[i] - low) / (high - low), 0.0), 1.0)
    for i in range(fo.size):
        v = fo[i]
        if v >= thr:  # no necrosis risk (the usual site): skip the exponential
            fn[i] = 0.0
            continue
        rate = min(max((thr - v) / (thr - worst), 0.0), 1.0) / necrosis_time_h
        fn[i] = -np.expm1(-rate)


@numba.njit(cache=True)
def _after_ifng(kind, hill, chem_base, chem_ifng, tgfb_tumor, tgfb_mdsc, tgfb_m2, m2,
                pdl1_rate, chem_source, tgfb_source, pdl1_induced):  # pragma: no cover
    """The chemokine and suppressive-factor sources of ``_update_fields`` and
    ``Tissue.relax_pdl1`` toward the Hill response ``hill``, in one pass."""
    w, h = kind.shape
    for x in range(w):
        for y in range(h):
            r = hill[x, y]
            k = kind[x, y]
            cancer = 1.0 if k == 1 else 0.0  # Kind.CANCER
            chem_source[x, y] = cancer * (chem_base + chem_ifng * r)
            tgfb_source[x, y] = (cancer * tgfb_tumor + (tgfb_mdsc if k == 5 else 0.0)  # MDSC
                                 + (tgfb_m2 if m2[x, y] else 0.0))
            pdl1_induced[x, y] += cancer * pdl1_rate * (r - pdl1_induced[x, y])


@numba.njit(cache=True, error_model="numpy")
def _saturate(c, k, out):  # pragma: no cover - compiled
    """out = c / (c + k), from float32 powers into a float64 response; a power too large for
    float32 (inf) gives 1, the limit (and what ``TumorModel.ifng_response`` gives in float64)."""
    fc, fo = c.ravel(), out.ravel()
    for i in range(fc.size):
        v = np.float64(fc[i])
        fo[i] = v / (v + k) if v < np.inf else 1.0


_FLOAT32_TINY = 1e-30  # below this, K^n and the powers near it are near float32's subnormals


def _ifng_response(ifng: np.ndarray, hill: float, half_max: float,
                   scratch: np.ndarray | None = None) -> np.ndarray:
    """``TumorModel.ifng_response`` with the power taken in float32 (numpy's vector power:
    2.2x faster than in float64 at 100x100; the response differs by float32 round-off, a
    relative 1e-7), then the saturation in one compiled pass into a new float64 array (as
    there: a caller may keep last hour's). ``scratch``: a float32 array of the grid's shape
    to reuse for the powers.

    float32's range is narrower than float64's: a steep response (a large Hill coefficient)
    to much IFN-gamma makes powers beyond float32 (taken as a response of 1, the limit), and
    a steep response with a tiny half-max makes ``half_max ** hill`` and the powers near it
    subnormal (few significant bits). In that case the concentrations are divided by the
    half-max first, so the powers near the half-max are near 1 (c^n / (c^n + K^n) =
    q^n / (q^n + 1), q = c / K)."""
    if scratch is None or scratch.shape != ifng.shape:
        scratch = np.empty(ifng.shape, dtype=np.float32)
    scratch[...] = ifng
    k = float(half_max) ** float(hill)
    if k < _FLOAT32_TINY:
        scratch /= np.float32(half_max)
        k = 1.0
    with np.errstate(over="ignore"):  # an overflow is inf, which _saturate takes as 1
        np.power(scratch, np.float32(hill), out=scratch)
    out = np.empty(ifng.shape)
    _saturate(scratch, k, out)
    return out


_OXYGEN_THREAD: ThreadPoolExecutor | None = None


def _oxygen_thread() -> ThreadPoolExecutor:
    """The thread that solves oxygen for models with ``use_threads`` (one per process, made
    when first needed; each model waits for its own solve)."""
    global _OXYGEN_THREAD
    if _OXYGEN_THREAD is None:
        _OXYGEN_THREAD = ThreadPoolExecutor(1, thread_name_prefix="abm-oxygen")
    return _OXYGEN_THREAD


def update_fields(model) -> None:
    """``TumorModel._update_fields`` with the solvers above and the per-site arithmetic in
    compiled passes (the same sources, order, vessel collapse and solves every
    ``field_step_h`` hours)."""
    from abm.fast.census import collapse_vessels

    p = model.p
    collapse_vessels(model)
    kind = model.tissue.kind
    every = p["field_step_h"]
    solve = model._field_hours % every == 0
    model._field_hours += 1
    pdl1_rate = 1.0 - np.exp(-1.0 / p["pdl1_induction_time_h"])  # per hour
    if not solve:  # PD-L1 relaxes toward the last solve's response (Tissue.relax_pdl1)
        model.tissue.relax_pdl1(model.ifng_hill, pdl1_rate, kind == 1)  # Kind.CANCER
        return
    if every > 1:
        model.ifng_source /= every  # the CTLs' secretion since the last solve, as a mean rate
    scratch = model._field_scratch
    if scratch is None or scratch[0].shape != kind.shape:
        scratch = model._field_scratch = (np.empty(kind.shape), np.empty(kind.shape),
                                          np.empty(kind.shape, dtype=np.float32))
    o2_loss, ifng_loss = scratch[:2]
    chem_source, tgfb_source = model.linear_fields.sources  # filled in place, read in place
    _losses(kind, model._o2_uptake, model._ifng_decay_h, model._ifng_uptake_h, o2_loss,
            ifng_loss)
    # nothing below reads oxygen before _oxygen_effects: with a field thread (use_threads),
    # the oxygen solve runs there alongside IFN-gamma's and the linear fields' (each solve
    # the same arithmetic on either thread, so the run is the same)
    oxygen = _oxygen_thread().submit(model.oxygen.step, o2_loss) if model._field_thread \
        else None
    if oxygen is None:
        model.oxygen.step(o2_loss)
    model.ifng.step(ifng_loss, model.ifng_source)
    model.ifng_source[...] = 0.0
    hill = model.ifng_hill = _ifng_response(model.ifng.data, p["pdl1_ifng_hill"],
                                            p["pdl1_ifng_half_max"], scratch[2])
    _after_ifng(kind, hill, p["chemokine_secretion"],
                p["chemokine_ifng_secretion"], p["tgfb_secretion_tumor"],
                p["tgfb_secretion_mdsc"], p["tgfb_secretion_m2"],
                np.ascontiguousarray(model.m2_map()),
                pdl1_rate, chem_source, tgfb_source,
                model.tissue.pdl1_induced)
    model.linear_fields.step([chem_source, tgfb_source])
    if oxygen is not None:
        oxygen.result()
    # new arrays each hour, as TumorModel makes them (a caller may keep last hour's)
    model.oxygen_growth = np.empty(kind.shape)
    model._necrosis_prob = np.empty(kind.shape)
    _oxygen_effects(model.oxygen.data, p["oxygen_proliferation_threshold"],
                    p["oxygen_proliferation_saturation"], p["necrosis_threshold"],
                    p["necrosis_max"], p["necrosis_time_h"], model.oxygen_growth,
                    model._necrosis_prob)
