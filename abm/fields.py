"""Diffusing, decaying fields on the grid (chemokine, IFN-gamma, suppressive factor, drugs).

Each field is a numpy array of concentrations per site, updated in place once per model step by

    dc/dt = D * laplacian(c) - k * c + S

with closed (zero-flux) boundaries. An explicit scheme would need thousands of sub-steps per hour
for IFN-gamma (D = 100 um^2/s on 15 um sites: D*dt/dx^2 = 1600 for dt = 1 h). Instead the
equation is solved exactly over the step in the cosine basis that diagonalises the discrete
Neumann Laplacian (a DCT-II, scipy.fft.dctn): each mode decays by exp(sigma*dt), with
sigma = D*mu - k. The update is unconditionally stable, exact for a source held constant over
the hour, and conserves mass exactly when k = 0 (the constant mode has mu = 0). Cost: three
2-D transforms per field per hour.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft

from abm.params import SITE_UM


class Field:
    """One diffusing field.

    Args:
        name: label used by the model and the dashboard.
        shape: grid shape (width, height).
        diffusion_um2_s: diffusion coefficient, um^2/s.
        half_life_h: half-life in hours (``math.inf`` for no decay).
        dt_h: step length in hours.
        site_um: grid spacing in um.
    """

    def __init__(
        self,
        name: str,
        shape: tuple[int, int],
        diffusion_um2_s: float,
        half_life_h: float,
        dt_h: float = 1.0,
        site_um: float = SITE_UM,
        unit: str = "a.u.",
    ) -> None:
        self.name = name
        self.unit = unit
        self.data = np.zeros(shape, dtype=np.float64)
        decay_per_h = 0.0 if math.isinf(half_life_h) else math.log(2) / half_life_h
        d_sites2_per_h = diffusion_um2_s * 3600.0 / site_um**2
        mu = [-4.0 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2 for n in shape]
        sigma = d_sites2_per_h * (mu[0][:, None] + mu[1][None, :]) - decay_per_h
        growth = np.exp(sigma * dt_h)
        with np.errstate(divide="ignore", invalid="ignore"):
            source_gain = np.where(sigma == 0.0, dt_h, (growth - 1.0) / sigma)
        self._growth = growth
        self._source_gain = source_gain

    def step(self, source: np.ndarray | None = None) -> None:
        """Advance one step with ``source`` (concentration per hour per site), in place."""
        spectrum = fft.dctn(self.data, type=2, norm="ortho")
        spectrum *= self._growth
        if source is not None:
            spectrum += self._source_gain * fft.dctn(source, type=2, norm="ortho")
        result = fft.idctn(spectrum, type=2, norm="ortho")
        np.maximum(result, 0.0, out=result)  # round-off can leave -1e-17 where c is ~0
        self.data[...] = result

    def total(self) -> float:
        """Total amount in the field (sum over sites)."""
        return float(self.data.sum())


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of a * b over the grid (einsum: np.vdot goes through BLAS, whose threads cost
    milliseconds per call on a busy machine)."""
    return float(np.einsum("ij,ij->", a, b))


class ReactionField:
    """A field whose loss rate varies by site (uptake by the cells there), solved implicitly.

        dc/dt = D * laplacian(c) - k(x) * c + S(x)

    ``k(x)`` changes every hour (cells move, divide, die), so the cosine basis no longer
    diagonalises the operator. Each step is one backward-Euler step of length ``dt_h``:

        (1/dt + k(x) - D * laplacian) c_new = c_old / dt + S

    an SPD system solved by conjugate gradients warm-started from the last hour, preconditioned
    by the same operator with a uniform ``k_ref`` (diagonal in the cosine basis, DCT-II, for
    closed boundaries; in the sine basis, DST-II, for a level held at the domain's faces). For
    oxygen (uptake 600 /h at a cell: it settles in about 0.1 min) each step is the quasi-steady
    profile of that hour's cells; for IFN-gamma (uptake 3.6 /h at cancer cells) it is
    first-order in time and exact at steady state.

    Boundaries: ``boundary_level=None`` is closed (zero flux, as :class:`Field`); a number is
    held at the faces of the edge sites (Dirichlet, PhysiCell's boundary condition: the tissue
    beyond the window is perfused). ``pinned`` sites (vessels) are held at ``pinned_level`` (a
    Dirichlet condition inside the domain) by a stiff penalty whose effect on the
    preconditioner is removed exactly with the Woodbury identity, so it costs no extra
    iterations.

    Args:
        name, unit: label and unit of the concentration.
        shape: grid shape (width, height).
        diffusion_um2_s: diffusion coefficient, um^2/s.
        k_ref_per_h: uniform loss rate of the preconditioner, 1/h. It changes how many
            iterations a step takes and, because the stopping test is on the preconditioned
            residual, how far from the exact field the step stops; the model's choices
            (oxygen: between the background and a cancer cell's loss; IFN-gamma: its decay)
            were measured by ``benchmarks/preconditioner.py``.
        tol: the solve stops when the preconditioned residual is below ``tol`` (field units)
            at every site, or after ``max_iter`` iterations.
    """

    _PENALTY = 1e9  # 1/h: a pinned site follows its level to 1e-4 relative even next to D*4
    MAX_WOODBURY = 600  # pinned sites up to which the exact correction is kept (memory n^2)

    def __init__(
        self,
        name: str,
        shape: tuple[int, int],
        diffusion_um2_s: float,
        k_ref_per_h: float,
        *,
        boundary_level: float | None = None,
        pinned: list[tuple[int, int]] | None = None,
        pinned_level: float = 0.0,
        dt_h: float = 1.0,
        site_um: float = SITE_UM,
        unit: str = "a.u.",
        tol: float = 1e-4,
        max_iter: int = 200,
    ) -> None:
        self.name = name
        self.unit = unit
        self.shape = shape
        self.data = np.zeros(shape, dtype=np.float64)
        self.d = diffusion_um2_s * 3600.0 / site_um**2  # sites^2 per h
        self.inv_dt = 1.0 / dt_h
        self.k_ref = k_ref_per_h
        self.boundary_level = boundary_level
        self.tol = tol
        self.max_iter = max_iter
        self.iterations = 0  # of the last step (for benchmarks and tests)
        self._dirichlet = boundary_level is not None
        if self._dirichlet:  # sine basis (DST-II): the level is held at the domain's faces
            mu = [-4.0 * np.sin(np.pi * np.arange(1, n + 1) / (2 * n)) ** 2 for n in shape]
        else:  # cosine basis (DCT-II): zero flux
            mu = [-4.0 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2 for n in shape]
        self._eig = -self.d * (mu[0][:, None] + mu[1][None, :]) + self.inv_dt + k_ref_per_h
        # the level held at the domain's faces: the ghost site outside an edge site is
        # 2 * level - c (so the face, halfway, is at the level), which adds D * c to the edge
        # site's diagonal and 2 * D * level to its right-hand side, per face
        self._ghost = np.zeros(shape)
        if self._dirichlet:
            for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
                self._ghost[edge] += 2.0 * self.d * boundary_level
        self._pinned = np.array(sorted(set(pinned or [])), dtype=np.intp).reshape(-1, 2)
        self.pinned_level = pinned_level
        self._pin_mask = np.zeros(shape, dtype=bool)
        self._cap = None
        if len(self._pinned):
            self._pin_mask[tuple(self._pinned.T)] = True
        if 0 < len(self._pinned) <= self.MAX_WOODBURY:
            self._woodbury()

    def _woodbury(self) -> None:
        """The exact correction of the preconditioner for the pinned sites (Woodbury:
        (M0 + P E E^T)^-1 = M0^-1 - M0^-1 E C^-1 E^T M0^-1, C = I/P + E^T M0^-1 E), from the
        preconditioner's Green's matrix at those sites."""
        n = len(self._pinned)
        g = np.empty((n, n))
        for start in range(0, n, 32):  # batches keep the temporary array small
            rows = self._pinned[start:start + 32]
            delta = np.zeros((len(rows), *self.shape))
            delta[np.arange(len(rows)), rows[:, 0], rows[:, 1]] = 1.0
            solved = self._spectral_solve(delta, axes=(1, 2))
            g[start:start + len(rows)] = solved[:, self._pinned[:, 0], self._pinned[:, 1]]
        self._green = 0.5 * (g + g.T)  # kept: unpinning a site only drops rows
        self._cap = np.linalg.inv(np.eye(n) / self._PENALTY + self._green)

    def unpin(self, sites: list[tuple[int, int]]) -> None:
        """Stop holding ``sites`` at the pinned level (a vessel that collapsed): from the next
        step they follow the field's equation like any other site. The Woodbury correction is
        rebuilt from the kept Green's matrix of the remaining pinned sites (no new solves)."""
        drop = {tuple(int(v) for v in site) for site in sites}
        keep = [i for i, site in enumerate(map(tuple, self._pinned.tolist())) if site not in drop]
        if len(keep) == len(self._pinned):
            return
        self._pinned = self._pinned[keep].reshape(-1, 2)
        self._pin_mask[...] = False
        if len(self._pinned):
            self._pin_mask[tuple(self._pinned.T)] = True
        if self._cap is not None:
            self._green = self._green[np.ix_(keep, keep)]
            self._cap = (np.linalg.inv(np.eye(len(keep)) / self._PENALTY + self._green)
                         if keep else None)

    # --- linear algebra ------------------------------------------------------------------
    def _spectral_solve(self, r: np.ndarray, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
        """(D * -laplacian + 1/dt + k_ref)^-1 r in the sine or cosine basis."""
        if self._dirichlet:
            return fft.idstn(fft.dstn(r, type=2, axes=axes, norm="ortho") / self._eig,
                             type=2, axes=axes, norm="ortho")
        return fft.idctn(fft.dctn(r, type=2, axes=axes, norm="ortho") / self._eig,
                         type=2, axes=axes, norm="ortho")

    def _precondition(self, r: np.ndarray) -> np.ndarray:
        if len(self._pinned) and self._cap is None:
            # many pinned sites: block-diagonal (pinned sites alone, the rest by the spectral
            # solve); symmetric positive definite, only slower to converge than Woodbury
            free = ~self._pin_mask
            z = self._spectral_solve(r * free) * free
            z[self._pin_mask] = r[self._pin_mask] / (self._PENALTY + 4.0 * self.d)
            return z
        z = self._spectral_solve(r)
        if self._cap is not None:
            y = self._cap @ z[self._pinned[:, 0], self._pinned[:, 1]]
            e = np.zeros(self.shape)
            e[self._pinned[:, 0], self._pinned[:, 1]] = y
            z -= self._spectral_solve(e)
        return z

    def _apply(self, c: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """A c = diag * c + D * (4 c - sum of the 4 neighbours), with the boundary rule."""
        d = self.d
        out = (diag + 4.0 * d) * c
        out[1:, :] -= d * c[:-1, :]
        out[:-1, :] -= d * c[1:, :]
        out[:, 1:] -= d * c[:, :-1]
        out[:, :-1] -= d * c[:, 1:]
        # ghost outside an edge site: c (zero flux) or -c (level 0 at the face, the
        # homogeneous part of a fixed level; the level itself is in the right-hand side)
        sign = 1.0 if self._dirichlet else -1.0
        out[0, :] += sign * d * c[0, :]
        out[-1, :] += sign * d * c[-1, :]
        out[:, 0] += sign * d * c[:, 0]
        out[:, -1] += sign * d * c[:, -1]
        return out

    def step(self, uptake_per_h: np.ndarray | float, source: np.ndarray | None = None) -> None:
        """Advance one step: loss rate ``uptake_per_h`` (1/h, per site) and ``source``
        (concentration per hour per site), in place."""
        diag = self.inv_dt + np.broadcast_to(np.asarray(uptake_per_h, dtype=np.float64),
                                              self.shape)
        b = self.inv_dt * self.data + self._ghost
        if source is not None:
            b = b + source
        if len(self._pinned):
            diag = diag + self._PENALTY * self._pin_mask
            b = b + (self._PENALTY * self.pinned_level) * self._pin_mask
        x = self.data.copy()
        r = b - self._apply(x, diag)
        z = self._precondition(r)
        p = z.copy()
        rz = _dot(r, z)
        iterations = 0
        while iterations < self.max_iter and np.abs(z).max() > self.tol:
            ap = self._apply(p, diag)
            alpha = rz / _dot(p, ap)
            x += alpha * p
            r -= alpha * ap
            z = self._precondition(r)
            rz_new = _dot(r, z)
            p *= rz_new / rz
            p += z
            rz = rz_new
            iterations += 1
        self.iterations = iterations
        np.maximum(x, 0.0, out=x)
        self.data[...] = x

    def total(self) -> float:
        """Total amount in the field (sum over sites)."""
        return float(self.data.sum())
