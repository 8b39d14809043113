"""Well-mixed cross-check: the Kuznetsov et al. (1994) effector-tumour model.

Kuznetsov, Makalkin, Taylor & Perelson (1994), "Nonlinear dynamics of immunogenic tumors:
parameter estimation and global bifurcation analysis", Bull. Math. Biol. 56:295-321::

    dE/dt = s + p·E·T/(g + T) − m·E·T − d·E        (effector cells, E)
    dT/dt = a·T·(1 − b·T) − n·E·T                  (tumour cells, T)

This module gives three views of the same processes, all without space:

* :func:`integrate_ode` integrates the ODE with :func:`scipy.integrate.solve_ivp`;
* :func:`equilibria` returns the fixed points and the eigenvalues of the Jacobian at each;
* :class:`WellMixedModel` is a stochastic, individual-based version of the same processes as a
  Mesa model (see its docstring for the reduced design: agents are packets of cells, events are
  drawn by tau-leaping).

It is the yardstick for the spatial :mod:`abm` model: where the two disagree, the reason should be
space (contact-limited killing, growth only at the rim), not a mistake in the rates.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import mesa
import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

__all__ = [
    "Equilibrium",
    "EffectorPacket",
    "KuznetsovParams",
    "TumorPacket",
    "WellMixedModel",
    "equilibria",
    "integrate_ode",
    "run_stochastic",
]


@dataclass(frozen=True)
class KuznetsovParams:
    """Parameters of the Kuznetsov et al. (1994) model, in dimensional units (cells, days).

    Source for every value: Kuznetsov, Makalkin, Taylor & Perelson (1994), Bull. Math. Biol.
    56:295, section 3 (fitted to BCL1 lymphoma in the spleen of chimeric mice); the values also
    agree with BioModels BIOMD0000000762 and reproduce the paper's scaled constants
    (sigma=0.1181, rho=1.131, eta=20.19, mu=0.00311, delta=0.3743, alpha=1.636, beta=0.002)
    with E0 = T0 = 1e6 cells and tau = n·T0·t. See docs/references.md section 3.
    """

    s: float = 1.3e4
    """Baseline influx of effector cells into the tumour site [cells/day]."""
    p: float = 0.1245
    """Maximum tumour-stimulated recruitment (proliferation) of effectors [1/day]."""
    g: float = 2.019e7
    """Tumour size giving half-maximal recruitment [cells]."""
    m: float = 3.422e-10
    """Inactivation of effectors by tumour cells [1/(cell·day)]."""
    d: float = 0.0412
    """Death rate of effectors [1/day]."""
    a: float = 0.18
    """Maximal net growth rate of the tumour [1/day]."""
    b: float = 2.0e-9
    """Reciprocal of the tumour carrying capacity [1/cell] (capacity 5e8 cells)."""
    n: float = 1.101e-7
    """Rate at which effectors kill tumour cells [1/(cell·day)]."""

    @property
    def effector_baseline(self) -> float:
        """Tumour-free effector level s/d [cells] (3.16e5 with the defaults)."""
        return self.s / self.d

    def rhs(self, E: float, T: float) -> tuple[float, float]:
        """Right-hand side (dE/dt, dT/dt) [cells/day] at state (E, T) [cells]."""
        dE = self.s + self.p * E * T / (self.g + T) - self.m * E * T - self.d * E
        dT = self.a * T * (1.0 - self.b * T) - self.n * E * T
        return dE, dT

    def jacobian(self, E: float, T: float) -> np.ndarray:
        """Jacobian of :meth:`rhs` at (E, T), rows (E, T), columns (d/dE, d/dT) [1/day]."""
        return np.array(
            [
                [
                    self.p * T / (self.g + T) - self.m * T - self.d,
                    self.p * E * self.g / (self.g + T) ** 2 - self.m * E,
                ],
                [-self.n * T, self.a - 2.0 * self.a * self.b * T - self.n * E],
            ]
        )


# --------------------------------------------------------------------------------------------
# Deterministic view
# --------------------------------------------------------------------------------------------


def integrate_ode(
    params: KuznetsovParams,
    E0: float,
    T0: float,
    days: float,
    *,
    dt_out_day: float = 1.0,
    method: str = "LSODA",
    rtol: float = 1e-8,
    atol: float = 1e-3,
) -> pd.DataFrame:
    """Integrate the Kuznetsov ODE from (E0, T0) [cells] for ``days`` days.

    Args:
        params: model parameters.
        E0: initial effector cells [cells].
        T0: initial tumour cells [cells].
        days: simulated time [days].
        dt_out_day: spacing of the output rows [days].
        method, rtol, atol: passed to :func:`scipy.integrate.solve_ivp` (LSODA copes with the
            stiff approach to the escape node; atol is in cells).

    Returns:
        DataFrame with columns ``day``, ``E``, ``T`` (cells), one row per output time.
    """
    if days <= 0:
        raise ValueError(f"days={days!r} must be > 0")
    if E0 < 0 or T0 < 0:
        raise ValueError(f"E0={E0!r} and T0={T0!r} must be >= 0 cells")

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        return list(params.rhs(y[0], y[1]))

    n_out = int(round(days / dt_out_day))
    t_eval = np.linspace(0.0, n_out * dt_out_day, n_out + 1)
    sol = solve_ivp(
        rhs,
        (0.0, float(t_eval[-1])),
        [float(E0), float(T0)],
        method=method,
        t_eval=t_eval,
        rtol=rtol,
        atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return pd.DataFrame({"day": sol.t, "E": sol.y[0], "T": sol.y[1]})


@dataclass(frozen=True)
class Equilibrium:
    """A fixed point of the ODE with its linear stability."""

    name: str
    """'tumour-free', 'dormant', 'saddle', 'escape' (or 'unstable')."""
    E: float
    """Effector cells at the fixed point [cells]."""
    T: float
    """Tumour cells at the fixed point [cells]."""
    eigenvalues: tuple[complex, complex]
    """Eigenvalues of the Jacobian [1/day]."""
    kind: str
    """'stable focus', 'stable node', 'saddle', 'unstable node' or 'unstable focus'."""

    @property
    def stable(self) -> bool:
        """True when both eigenvalues have negative real part."""
        return all(ev.real < 0 for ev in self.eigenvalues)

    @property
    def period_day(self) -> float:
        """Period of the damped oscillation 2π/|Im λ| [days] (inf for a node or saddle)."""
        im = abs(self.eigenvalues[0].imag)
        return 2.0 * math.pi / im if im > 0 else math.inf

    @property
    def decay_time_day(self) -> float:
        """Relaxation time 1/|max Re λ| [days] (of the slowest mode)."""
        re = max(ev.real for ev in self.eigenvalues)
        return 1.0 / abs(re) if re != 0 else math.inf


def _classify(eigenvalues: np.ndarray) -> str:
    re = eigenvalues.real
    complex_pair = abs(eigenvalues[0].imag) > 1e-14 * max(1.0, float(np.max(np.abs(re))))
    if np.all(re < 0):
        return "stable focus" if complex_pair else "stable node"
    if np.all(re > 0):
        return "unstable focus" if complex_pair else "unstable node"
    return "saddle"


def equilibria(params: KuznetsovParams) -> list[Equilibrium]:
    """All fixed points with E >= 0, T >= 0, ordered by tumour size.

    The tumour-free point is (s/d, 0). Interior points have E = a(1 − bT)/n; putting that into
    dE/dt = 0 and multiplying by (g + T) gives a cubic in T, solved with :func:`numpy.roots`
    and polished with two Newton steps. With the published parameters there are three interior
    roots: a stable focus (dormant), a saddle and a stable node (escape); they are named so.
    For other parameters, stable points below half the carrying capacity are called 'dormant',
    above it 'escape', and unstable ones 'saddle' or 'unstable'.
    """
    P = params
    # s·n·(g+T) + a·(1−bT)·(p·T − (m·T + d)·(g+T)) = 0, expanded as a cubic in T.
    # (1 − bT)(−m T² + (p − m g − d) T − d g)
    q2, q1, q0 = -P.m, P.p - P.m * P.g - P.d, -P.d * P.g
    cubic = np.array(
        [
            P.a * (P.b * P.m),
            P.a * (q2 - P.b * q1),
            P.a * (q1 - P.b * q0),
            P.a * q0 + P.s * P.n * P.g,
        ]
    )
    cubic[2] += P.s * P.n
    roots = np.roots(cubic)

    def g_of_T(T: float) -> float:
        E = P.a * (1.0 - P.b * T) / P.n
        return P.rhs(E, T)[0] * (P.g + T)

    interior: list[float] = []
    for r in roots:
        if abs(r.imag) > 1e-6 * max(1.0, abs(r.real)):
            continue
        T = float(r.real)
        for _ in range(2):  # Newton polish on the exact residual
            h = max(1.0, 1e-7 * T)
            slope = (g_of_T(T + h) - g_of_T(T - h)) / (2 * h)
            if slope != 0:
                T -= g_of_T(T) / slope
        if 0.0 < T < 1.0 / P.b:
            interior.append(T)
    interior.sort()

    points: list[tuple[float, float]] = [(P.s / P.d, 0.0)]
    points += [(P.a * (1.0 - P.b * T) / P.n, T) for T in interior]

    result: list[Equilibrium] = []
    for i, (E, T) in enumerate(points):
        ev = np.linalg.eigvals(P.jacobian(E, T))
        ev = ev[np.argsort(-ev.imag)]  # conjugate pair: +Im first
        kind = _classify(ev)
        if i == 0:
            name = "tumour-free"
        elif kind.startswith("stable"):
            name = "dormant" if T < 0.5 / P.b else "escape"
        else:
            name = "saddle" if kind == "saddle" else "unstable"
        result.append(Equilibrium(name, E, T, (complex(ev[0]), complex(ev[1])), kind))
    return result


# --------------------------------------------------------------------------------------------
# Stochastic, individual-based view
# --------------------------------------------------------------------------------------------


class TumorPacket(mesa.Agent):
    """A packet of ``model.cells_per_agent`` tumour cells.

    Per step of ``dt`` days a packet, independently of the others:
    divides (one new packet) with probability a·dt; dies of crowding with probability a·b·T·dt;
    is killed by effectors with probability n·E·dt (mutually exclusive within a step).
    """


class EffectorPacket(mesa.Agent):
    """A packet of ``model.effector_cells_per_agent`` effector (cytotoxic) cells.

    Per step of ``dt`` days a packet, independently of the others:
    recruits one more packet with probability p·T/(g+T)·dt; dies with probability d·dt; is
    inactivated by tumour cells with probability m·T·dt (mutually exclusive within a step).
    New packets also arrive from outside at rate s/effector_cells_per_agent per day (Poisson).
    """


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def effector_cells(model: WellMixedModel) -> float:
    """Effector cells E [cells] (reporter)."""
    return model.effector_cells


def tumor_cells(model: WellMixedModel) -> float:
    """Tumour cells T [cells] (reporter)."""
    return model.tumor_cells


def day(model: WellMixedModel) -> float:
    """Simulated time [days] (reporter)."""
    return model.day


class WellMixedModel(mesa.Model):
    """Stochastic, non-spatial, individual-based version of the Kuznetsov (1994) model.

    Reduced design (documented choice, not the cell-per-agent design of the spatial model):

    * **Agents are packets.** Each agent stands for a fixed number of identical cells
      (:class:`TumorPacket`, :class:`EffectorPacket`). A packet carries no state of its own, so
      packets of one type are exchangeable. Cell counts are packets × cells per packet.
    * **Per-packet rules, population-level draws (tau-leaping).** Each step lasts ``dt_day``
      days. The per-packet event probabilities in the agent docstrings are rate × dt, evaluated
      with E and T at the start of the step; because packets are exchangeable and independent,
      the numbers of events are drawn at once, one multinomial per type (plus a Poisson draw for
      the external influx s), from ``self.rng``. Using rate × dt (not 1 − exp(−rate·dt)) makes the
      expected step exactly the explicit Euler step of the ODE, so the stochastic model has the
      ODE's fixed points; with dt = 0.1 d the Euler step damps the dormant oscillation at
      0.0053/d instead of 0.0055/d.
    * **Net update of the agent set.** Since packets are exchangeable, a step's births and
      deaths of one type are applied as their net effect: new packets are created, or the
      most recently created packets are removed. This is equal in distribution to removing the
      particular packets that died, and keeps a 1000-day run (10 000 steps) fast.
    * **Two packet sizes.** Tumour packets hold ``cells_per_agent`` cells (default 1e4),
      effector packets ``effector_cells_per_agent`` (default 1e3). Effectors are 10-1000 times
      fewer than tumour cells (E ≈ 1.7e5-1.6e6 against T ≈ 8e6-4.5e8), so equal packets would
      leave ~30 effector packets at the start and ~17 in the escape state, and their noise would
      decide dormancy or escape (with 1e4-cell effector packets, 4 of 10 seeds escaped from
      T0 = 5e7, which the ODE holds dormant). 1e3-cell effector packets keep ~1600 of them near
      the dormant state and ~820 tumour packets.
    * **Noise.** Demographic noise is that of a population of N/cells_per_packet individuals,
      i.e. sqrt(cells_per_packet) times larger in relative terms than for single cells. Smaller
      packets mean less noise and more agents (and a slower run).
    * Once the tumour has no packets left it cannot regrow (T = 0 is absorbing, as in the ODE);
      ``running`` then becomes False, though ``step`` may still be called.

    Determinism: every draw comes from ``self.rng``, so the same ``rng`` seed gives the same
    trajectory.

    Args:
        E0: initial effector cells [cells]; ``None`` means the tumour-free level s/d.
        T0: initial tumour cells [cells], >= 0.
        cells_per_agent: tumour cells represented by one tumour agent [cells], >= 1.
        effector_cells_per_agent: effector cells represented by one effector agent [cells], >= 1.
        dt_day: length of one step [days], in (0, 1]; per-packet event probabilities must stay
            below 1 (checked every step).
        params: a :class:`KuznetsovParams` (defaults: the published values).
        rng: seed or numpy Generator for ``self.rng``.
    """

    def __init__(
        self,
        E0: float | None = None,
        T0: float = 1e7,
        cells_per_agent: float = 1e4,
        effector_cells_per_agent: float = 1e3,
        dt_day: float = 0.1,
        params: KuznetsovParams | None = None,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(rng=rng)
        self.params = params if params is not None else KuznetsovParams()
        if E0 is None:
            E0 = self.params.effector_baseline
        for name, value, lo, hi in (
            ("E0", E0, 0.0, math.inf),
            ("T0", T0, 0.0, math.inf),
            ("cells_per_agent", cells_per_agent, 1.0, math.inf),
            ("effector_cells_per_agent", effector_cells_per_agent, 1.0, math.inf),
        ):
            if not _is_number(value) or not lo <= value < hi:
                raise ValueError(f"{name}={value!r} must be a number in [{lo}, {hi})")
        if not _is_number(dt_day) or not 0.0 < dt_day <= 1.0:
            raise ValueError(f"dt_day={dt_day!r} must be a number in (0, 1]")

        self.cells_per_agent = float(cells_per_agent)
        self.effector_cells_per_agent = float(effector_cells_per_agent)
        self.dt_day = float(dt_day)
        self.day = 0.0
        # Own LIFO lists of the packets of each type, for O(1) removal; Mesa's agents_by_type
        # holds the same agents and is what the reporters count.
        self._packets: dict[type[mesa.Agent], list[mesa.Agent]] = {
            EffectorPacket: [],
            TumorPacket: [],
        }
        self._add(EffectorPacket, self._round_packets(E0, self.effector_cells_per_agent))
        self._add(TumorPacket, self._round_packets(T0, self.cells_per_agent))

        self.datacollector = mesa.DataCollector(
            model_reporters={"Day": day, "E": effector_cells, "T": tumor_cells}
        )
        self.running = self.n_tumor_packets > 0
        self.datacollector.collect(self)

    # ---- bookkeeping -----------------------------------------------------------------------

    def _round_packets(self, cells: float, cells_per_packet: float) -> int:
        """Unbiased stochastic rounding of a cell count to whole packets."""
        x = cells / cells_per_packet
        whole = math.floor(x)
        return whole + int(self.rng.random() < x - whole)

    def _add(self, cls: type[mesa.Agent], k: int) -> None:
        if k > 0:
            self._packets[cls].extend(cls.create_agents(self, k))

    def _remove(self, cls: type[mesa.Agent], k: int) -> None:
        packets = self._packets[cls]
        for _ in range(k):
            packets.pop().remove()

    @property
    def n_tumor_packets(self) -> int:
        """Number of tumour packets (agents)."""
        return len(self._packets[TumorPacket])

    @property
    def n_effector_packets(self) -> int:
        """Number of effector packets (agents)."""
        return len(self._packets[EffectorPacket])

    @property
    def tumor_cells(self) -> float:
        """Tumour cells T [cells], counted from Mesa's agents_by_type."""
        agents = self.agents_by_type.get(TumorPacket)
        return (len(agents) if agents is not None else 0) * self.cells_per_agent

    @property
    def effector_cells(self) -> float:
        """Effector cells E [cells], counted from Mesa's agents_by_type."""
        agents = self.agents_by_type.get(EffectorPacket)
        return (len(agents) if agents is not None else 0) * self.effector_cells_per_agent

    # ---- dynamics --------------------------------------------------------------------------

    def step(self) -> None:
        """One tau-leap of ``dt_day`` days: draw all events from the start-of-step state."""
        P, dt = self.params, self.dt_day
        n_E, n_T = self.n_effector_packets, self.n_tumor_packets
        E, T = n_E * self.effector_cells_per_agent, n_T * self.cells_per_agent

        # Effector packets: recruit (divide), die, are inactivated by tumour.
        probs_E = [P.p * T / (P.g + T) * dt, P.d * dt, P.m * T * dt]
        # Tumour packets: divide, die of crowding, are killed by effectors.
        probs_T = [P.a * dt, P.a * P.b * T * dt, P.n * E * dt]
        for name, probs in (("effector", probs_E), ("tumour", probs_T)):
            if sum(probs) > 1.0:
                raise ValueError(
                    f"dt_day={dt} too large: {name} event probabilities sum to {sum(probs):.3f}"
                )

        recruited, died_E, inactivated = self.rng.multinomial(n_E, [*probs_E, 1 - sum(probs_E)])[:3]
        influx = self.rng.poisson(P.s * dt / self.effector_cells_per_agent)
        divided, crowded, killed = self.rng.multinomial(n_T, [*probs_T, 1 - sum(probs_T)])[:3]

        self._apply(EffectorPacket, int(recruited + influx) - int(died_E + inactivated))
        self._apply(TumorPacket, int(divided) - int(crowded + killed))

        self.day = self.steps * dt
        if self.n_tumor_packets == 0:
            self.running = False
        self.datacollector.collect(self)

    def _apply(self, cls: type[mesa.Agent], net: int) -> None:
        if net > 0:
            self._add(cls, net)
        elif net < 0:
            self._remove(cls, -net)

    def run_for_days(self, days: float) -> None:
        """Advance the model by ``days`` days (rounded to whole steps)."""
        for _ in range(int(round(days / self.dt_day))):
            self.step()

    def results(self) -> pd.DataFrame:
        """The DataCollector's time series: columns Day, E, T (cells)."""
        return self.datacollector.get_model_vars_dataframe()


def run_stochastic(
    E0: float | None,
    T0: float,
    days: float,
    rng: int | np.random.Generator | None = None,
    *,
    cells_per_agent: float = 1e4,
    effector_cells_per_agent: float = 1e3,
    dt_day: float = 0.1,
    params: KuznetsovParams | None = None,
) -> pd.DataFrame:
    """Build a :class:`WellMixedModel`, run it for ``days`` days and return its time series."""
    model = WellMixedModel(
        E0=E0,
        T0=T0,
        cells_per_agent=cells_per_agent,
        effector_cells_per_agent=effector_cells_per_agent,
        dt_day=dt_day,
        params=params,
        rng=rng,
    )
    model.run_for_days(days)
    return model.results()
