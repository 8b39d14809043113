"""The per-agent rules of the fast engine: numba kernels over the engine's arrays.

Each kernel follows one Mesa method one to one (named in its docstring): the same decisions, in
the same order, with the same probabilities. The Mesa agents (``abm.agents``) stay the readable
specification; a change there must be made here too (``tests/test_fast_engine.py`` compares the
two engines as distributions).

Layout (structure of arrays, ``abm.fast.engine``):

- per site: ``kind`` (``abm.agents.Kind``), ``idx`` (index of the immune cell there, -1 if none)
  and the cancer-trait layers of ``abm.tissue.Tissue`` (``antigens``, ``antigenicity``,
  ``pdl1_base``, ``mhc``, ``pdl1_induced``, ``car_negative``, ``clone``);
- per immune cell ``i``: ``ix[i], iy[i]`` (site), ``ikind[i]`` (``Kind``), ``antigen[i]``
  (bit index; -1 for CAR-T and suppressors), ``exhaustion[i]``, ``kills[i]``,
  ``divisions[i]`` (divisions left), ``engaged[i]``, ``alive[i]``, ``state[i]`` (a CTL: 1 for
  a progenitor, 0 for an effector; a macrophage: 1 for M2, 0 for M1). ``n[0]`` is the number of
  slots in use; new cells go to slot ``n[0]``.
- cancer cells killed by an immune cell are reported in ``dead`` (their antigen bitmask) and
  ``dead_fate`` (``FATE_*``), ``counters[C_DEAD]`` of them, so the engine can hand them to the
  lymph node (``LymphNode.release``, as ``CancerCell.die`` does).

Randomness: each kernel seeds numba's generator from a seed the engine draws from its numpy
``Generator`` (``model.rng``) just before the call (passed as the kernel's ``seed_value``, or
given to ``seed`` first), so a run is a function of its seed.

Neighbours are visited in Mesa's order for ``OrthogonalMooreGrid`` (the offsets below), so
"the first neighbour with the most chemokine" is the same site as ``max(free, key=...)``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.core.typing import signature
from numba.cpython import randomimpl as _random
from numba.extending import intrinsic

# Kind values (abm.agents.base.Kind), as plain ints for the kernels
EMPTY, CANCER, TCELL, CART, TREG, MDSC, NECROTIC, MACROPHAGE, NK = 0, 1, 2, 3, 4, 5, 6, 7, 8
# how a cancer cell killed in a kernel died (CancerCell.fate): "killed", "nk_killed",
# "phagocytosed"; the engine maps them back with FATES
FATE_KILLED, FATE_NK_KILLED, FATE_PHAGOCYTOSED = 0, 1, 2
FATES = ("killed", "nk_killed", "phagocytosed")
# indices into the counters of the kernels: kills reported in ``dead``, progenitor divisions
C_DEAD, C_PROGENITOR_DIVISIONS = 0, 1

# Mesa's neighbour order for OrthogonalMooreGrid (mesa.discrete_space.grid)
DX = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
DY = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)

# indices into the float parameter vector of step_killers (see engine._killer_params)
(F_BIAS, F_INFILTRATION, F_PD1_INHIBITION, F_PDL1_INDUCTION, F_PD1_OCCUPANCY, F_IFNG_SECRETION,
 F_KILL_PROB, F_TREG_SUPPRESSION, F_MDSC_SUPPRESSION, F_TGFB_HALF_MAX, F_PROLIFERATION_PROB,
 F_TCELL_LIFESPAN_H, F_CART_LIFESPAN_H, F_PROGENITOR_LIFESPAN_H, F_PROGENITOR_PD1_INHIBITION,
 F_PROGENITOR_DIVISION_PROB, F_DETECTION_LIMIT) = range(17)
# indices into the int parameter vector
I_SPEED, I_EXHAUSTED_SPEED, I_TCELL_EXHAUSTION_LIMIT, I_CART_EXHAUSTION_LIMIT, I_MAX_DIVISIONS = \
    range(5)
# indices into the float parameter vector of step_innate (see engine._innate_params)
(G_BIAS, G_INFILTRATION, G_MAC_LIFESPAN_H, G_MAC_DEPLETION, G_POLARISATION_RATE,
 G_REPOLARISATION, G_HYPOXIC_THRESHOLD, G_TGFB_HALF_MAX, G_MAC_IFNG_SECRETION, G_MAC_KILL_PROB,
 G_NK_LIFESPAN_H, G_IFNG_SECRETION, G_NK_KILL_PROB, G_NK_TGFB_SUPPRESSION,
 G_DETECTION_LIMIT) = range(15)
# indices into the int parameter vector of step_innate
J_MAC_SPEED, J_NK_SPEED, J_EXHAUSTED_SPEED, J_NK_KILL_LIMIT = range(4)


@intrinsic
def _uniform(typingcontext):
    """``np.random.random()``: the same code numba generates for it (the same state, the same
    draw), emitted in the kernel rather than called as a separate function, which costs about
    as much as the draw itself."""
    def codegen(context, builder, sig, args):
        state = _random.get_state_ptr(context, builder, "np")
        return _random.get_next_double(context, builder, state)
    return signature(types.float64), codegen


@intrinsic
def _below(typingcontext, n):
    """``np.random.randint(0, n)`` (``n`` >= 1, an int64): numba's own code for it, emitted in
    the kernel (as ``_uniform``)."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        ty = ir.IntType(64)
        return _random._randrange_impl(context, builder, ir.Constant(ty, 0), args[0],
                                       ir.Constant(ty, 1), ty, True, "np")
    return signature(types.int64, types.int64), codegen


# --- draws from the model's numpy generator, inside compiled code ---------------------------
# ``bits`` (``FastTumorModel._bits``): the addresses of the bit generator's ``next_uint32``,
# ``next_uint64`` and ``next_double`` and of its state (``BitGenerator.ctypes``), so compiled
# code draws from ``model.rng`` itself, exactly the numbers (and the state after) of the numpy
# calls it stands for (``tests/test_fast_engine.py``).
BITS_NEXT_UINT32, BITS_NEXT_UINT64, BITS_NEXT_DOUBLE, BITS_STATE = range(4)


def _bit_generator_call(return_type):
    """An intrinsic calling a bit generator's ``next_*`` at an address with its state."""
    @intrinsic
    def call(typingcontext, fn, state):
        def codegen(context, builder, sig, args):
            uintp = context.get_value_type(types.uintp)
            fnty = ir.FunctionType(context.get_value_type(return_type), (uintp,))
            return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), (args[1],))
        return signature(return_type, types.uintp, types.uintp), codegen
    return call


_next_uint32 = _bit_generator_call(types.uint32)
_next_uint64 = _bit_generator_call(types.uint64)
_next_double = _bit_generator_call(types.float64)


@njit(cache=True, inline="always")
def np_seed(bits):
    """``int(rng.integers(2**32))``: the bit generator's ``next_uint32``."""
    return np.int64(_next_uint32(bits[BITS_NEXT_UINT32], bits[BITS_STATE]))


@njit(cache=True, inline="always")
def np_uniforms(bits, out, n):
    """``rng.random(n)`` into ``out[:n]``."""
    fn = bits[BITS_NEXT_DOUBLE]
    state = bits[BITS_STATE]
    for k in range(n):
        out[k] = _next_double(fn, state)


@njit(cache=True, inline="always")
def _np_interval(bits, max_val):
    """numpy's ``random_interval(bitgen, max_val)`` (``Generator.shuffle``'s draw): a uniform
    integer in [0, max_val] by masked rejection."""
    if max_val == 0:
        return 0
    mask = max_val
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    state = bits[BITS_STATE]
    if max_val <= 0xFFFFFFFF:
        fn = bits[BITS_NEXT_UINT32]
        value = np.int64(_next_uint32(fn, state)) & mask
        while value > max_val:
            value = np.int64(_next_uint32(fn, state)) & mask
    else:
        fn = bits[BITS_NEXT_UINT64]
        value = np.int64(_next_uint64(fn, state)) & mask
        while value > max_val:
            value = np.int64(_next_uint64(fn, state)) & mask
    return value


@njit(cache=True, inline="always")
def np_shuffle(bits, a, n):
    """``rng.shuffle(a[:n])`` (1-d): numpy's swaps, so ``a[:n]`` becomes
    ``a[:n][rng.permutation(n)]``."""
    for i in range(n - 1, 0, -1):
        j = _np_interval(bits, i)
        if i != j:
            t = a[i]
            a[i] = a[j]
            a[j] = t


@njit(cache=True)
def seed(value):
    """Seed numba's generator (used by every kernel)."""
    np.random.seed(value)


@njit(cache=True, inline="always")
def _neighbours_of(kind, x, y, what, fx, fy):
    """Sites of the Moore neighbourhood holding ``what`` (a ``Kind``), in Mesa's order, into
    ``fx``/``fy``; their number."""
    w, h = kind.shape
    n = 0
    for k in range(8):
        nx = x + DX[k]
        ny = y + DY[k]
        if 0 <= nx < w and 0 <= ny < h and kind[nx, ny] == what:
            fx[n] = nx
            fy[n] = ny
            n += 1
    return n


@njit(cache=True, inline="always")
def _free_neighbours(kind, x, y, fx, fy):
    """Empty sites of the Moore neighbourhood (``abm.compat.free_neighbours``)."""
    return _neighbours_of(kind, x, y, EMPTY, fx, fy)


@njit(cache=True, inline="always")
def _cancer_neighbours(kind, x, y, fx, fy):
    """Cancer cells of the Moore neighbourhood (the blockers a killer squeezes past, an M1
    macrophage's targets)."""
    return _neighbours_of(kind, x, y, CANCER, fx, fy)


@njit(cache=True)
def _antigenicity(antigens, mhc, visibility):
    """``CancerCell.antigenicity``: MHC-I x (1 - (1 - v)^number of antigens)."""
    bits = 0
    a = int(antigens)
    while a:
        bits += a & 1
        a >>= 1
    return mhc * (1.0 - (1.0 - visibility) ** bits)


@njit(cache=True, inline="always")
def _clear_cancer(x, y, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced, car_negative,
                  clone):
    """A cancer cell leaves its site (``Tissue.remove``): the layers get their empty values."""
    kind[x, y] = EMPTY
    antigens[x, y] = 0
    antigenicity[x, y] = 0.0
    pdl1_base[x, y] = 0.0
    mhc[x, y] = 0.0
    pdl1_induced[x, y] = 0.0
    car_negative[x, y] = False
    clone[x, y] = -1


@njit(cache=True)
def divide_cancer(xs, ys, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                  car_negative, clone, mutation_rate, cum_weights, mhc_loss_factor,
                  pdl1_mutation_gain, antigen_loss_rate, visibility, next_clone, seed_value=-1):
    """The dividers, in the given (random) order: ``CancerCell.divide_if_room``, ``divide`` and
    ``mutate``. Each divides into a random neighbour still free at its turn; the daughter
    inherits the traits and the IFN-gamma-induced PD-L1 state, and may mutate (one of
    ``MUTATIONS`` with ``mutation_rate``, chosen by ``cum_weights`` as ``random.choices``
    does; the CAR target lost with ``antigen_loss_rate``), each change making a new clone
    (``next_clone[0]``). ``seed_value``: ``seed``'s, if not -1. Returns the number of
    daughters."""
    if seed_value != -1:
        np.random.seed(seed_value)
    scratch = np.empty((2, 8), dtype=np.int64)
    return _divide(xs, ys, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                   car_negative, clone, mutation_rate, cum_weights, mhc_loss_factor,
                   pdl1_mutation_gain, antigen_loss_rate, visibility, next_clone, scratch[0],
                   scratch[1])


@njit(cache=True, _nrt=False)
def _divide(xs, ys, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced, car_negative,
            clone, mutation_rate, cum_weights, mhc_loss_factor, pdl1_mutation_gain,
            antigen_loss_rate, visibility, next_clone, fx, fy):
    """``divide_cancer``' loop without reference counting (``_killers``)."""
    total = cum_weights[-1]
    born = 0
    for i in range(xs.shape[0]):
        x = xs[i]
        y = ys[i]
        nfree = _free_neighbours(kind, x, y, fx, fy)
        if nfree == 0:
            continue
        j = _below(nfree)
        nx = fx[j]
        ny = fy[j]
        a = int(antigens[x, y])
        m = float(mhc[x, y])
        pb = float(pdl1_base[x, y])
        car = not car_negative[x, y]
        cl = clone[x, y]
        changed = False
        if _uniform() < mutation_rate:
            u = _uniform() * total
            which = 0
            while which < 3 and cum_weights[which] <= u:  # bisect_right, as random.choices
                which += 1
            if which == 0:  # lose_antigen
                if a:
                    carried = 0
                    for b in range(8):
                        carried += (a >> b) & 1
                    pick = _below(carried)
                    for b in range(8):
                        if (a >> b) & 1:
                            if pick == 0:
                                a &= ~(1 << b)
                                break
                            pick -= 1
            elif which == 1:  # gain_antigen
                if a != 255:
                    absent = 0
                    for b in range(8):
                        absent += 1 - ((a >> b) & 1)
                    pick = _below(absent)
                    for b in range(8):
                        if not (a >> b) & 1:
                            if pick == 0:
                                a |= 1 << b
                                break
                            pick -= 1
            elif which == 2:  # lower_mhc
                m *= mhc_loss_factor
            else:  # raise_pdl1
                pb = min(1.0, pb + pdl1_mutation_gain)
            changed = True
        if car and _uniform() < antigen_loss_rate:
            car = False
            changed = True
        if changed:
            cl = next_clone[0]
            next_clone[0] += 1
        kind[nx, ny] = CANCER
        antigens[nx, ny] = a
        mhc[nx, ny] = m
        pdl1_base[nx, ny] = pb
        car_negative[nx, ny] = not car
        clone[nx, ny] = cl
        antigenicity[nx, ny] = _antigenicity(a, m, visibility)
        pdl1_induced[nx, ny] = pdl1_induced[x, y]
        born += 1
    return born


@njit(cache=True, inline="always")
def _next_site(i, ix, iy, kind, chemokine, taxis, fx, fy):
    """``ImmuneCell.next_site``: with probability ``taxis[0]`` (``chemotaxis_bias``) the free
    neighbour with the most chemokine if that is more than here and at least ``taxis[1]``
    (``chemokine_detection_limit``), else a random free neighbour; -1 if none is free.
    Returns the index into ``fx``/``fy``."""
    x = ix[i]
    y = iy[i]
    nfree = _free_neighbours(kind, x, y, fx, fy)
    if nfree == 0:
        return -1
    if _uniform() < taxis[0]:
        best = 0
        for k in range(1, nfree):
            if chemokine[fx[k], fy[k]] > chemokine[fx[best], fy[best]]:
                best = k
        level = chemokine[fx[best], fy[best]]
        if level > chemokine[x, y] and level >= taxis[1]:
            return best
    return _below(nfree)


@njit(cache=True, inline="always")
def _move(i, nx, ny, ix, iy, ikind, kind, idx):
    """``Tissue.move`` of immune cell ``i`` to the empty site (nx, ny)."""
    kind[ix[i], iy[i]] = EMPTY
    idx[ix[i], iy[i]] = -1
    kind[nx, ny] = ikind[i]
    idx[nx, ny] = i
    ix[i] = nx
    iy[i] = ny


@njit(cache=True, inline="always")
def _die(i, ix, iy, kind, idx, alive):
    """``TissueCell.die`` of immune cell ``i``."""
    kind[ix[i], iy[i]] = EMPTY
    idx[ix[i], iy[i]] = -1
    alive[i] = False


@njit(cache=True, inline="always")
def _migrate(i, moves, ix, iy, ikind, kind, idx, chemokine, taxis, fx, fy):
    """``ImmuneCell.migrate``: up to ``moves`` moves, stopping when boxed in."""
    for _ in range(moves):
        k = _next_site(i, ix, iy, kind, chemokine, taxis, fx, fy)
        if k < 0:
            return
        _move(i, fx[k], fy[k], ix, iy, ikind, kind, idx)


@njit(cache=True, inline="always")
def _find_target(i, ix, iy, ikind, antigen, kind, antigens, mhc, car_negative, tx, ty):
    """``TCell.find_target`` / ``CARTCell.recognises``: a random neighbouring cancer cell it
    recognises (a CTL: carries its antigen, seen with probability MHC-I; a CAR-T cell: carries
    the CAR target), as a flat index x * height + y, or -1."""
    w, h = kind.shape
    x = ix[i]
    y = iy[i]
    n = 0
    car = ikind[i] == CART
    for k in range(8):
        nx = x + DX[k]
        ny = y + DY[k]
        if 0 <= nx < w and 0 <= ny < h and kind[nx, ny] == CANCER:
            if car:
                seen = not car_negative[nx, ny]
            else:
                seen = ((int(antigens[nx, ny]) >> antigen[i]) & 1) == 1 \
                    and _uniform() < mhc[nx, ny]
            if seen:
                tx[n] = nx
                ty[n] = ny
                n += 1
    if n == 0:
        return -1
    j = _below(n)
    return tx[j] * h + ty[j]


@njit(cache=True, inline="always")
def _advance(i, ix, iy, ikind, kind, idx, chemokine, taxis, infiltration, antigens,
             antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone, fx, fy):
    """``ImmuneCell.advance``: one move; if boxed in, squeeze past a neighbouring cancer cell
    with probability ``infiltration`` (``Tissue.swap``: the cells exchange sites, the cancer
    cell's traits go with it). False if the cell cannot move."""
    k = _next_site(i, ix, iy, kind, chemokine, taxis, fx, fy)
    if k >= 0:
        _move(i, fx[k], fy[k], ix, iy, ikind, kind, idx)
        return True
    if _uniform() < infiltration:
        x = ix[i]
        y = iy[i]
        n = _cancer_neighbours(kind, x, y, fx, fy)
        if n > 0:
            j = _below(n)
            bx = fx[j]
            by = fy[j]
            kind[x, y] = CANCER
            antigens[x, y] = antigens[bx, by]
            antigenicity[x, y] = antigenicity[bx, by]
            pdl1_base[x, y] = pdl1_base[bx, by]
            mhc[x, y] = mhc[bx, by]
            pdl1_induced[x, y] = pdl1_induced[bx, by]
            car_negative[x, y] = car_negative[bx, by]
            clone[x, y] = clone[bx, by]
            idx[x, y] = -1
            antigens[bx, by] = 0
            antigenicity[bx, by] = 0.0
            pdl1_base[bx, by] = 0.0
            mhc[bx, by] = 0.0
            pdl1_induced[bx, by] = 0.0
            car_negative[bx, by] = False
            clone[bx, by] = -1
            kind[bx, by] = ikind[i]
            idx[bx, by] = i
            ix[i] = bx
            iy[i] = by
            return True
    return False


@njit(cache=True, inline="always")
def _spawn(i, x, y, ikind, antigen, exhaustion, kills, divisions, engaged, alive, state, n,
           kind, idx, ix, iy, daughter_divisions):
    """``Tissue.add_daughter``: a daughter of immune cell ``i`` (its kind and antigen, an
    effector with ``daughter_divisions`` divisions left) on the empty site (x, y), in slot
    ``n[0]``."""
    c = n[0]
    n[0] += 1
    ix[c] = x
    iy[c] = y
    ikind[c] = ikind[i]
    antigen[c] = antigen[i]
    exhaustion[c] = 0
    kills[c] = 0
    divisions[c] = daughter_divisions
    engaged[c] = False
    alive[c] = True
    state[c] = 0
    kind[x, y] = ikind[i]
    idx[x, y] = c


@njit(cache=True, inline="always")
def _report_death(x, y, fate, antigens, dead, dead_fate, counters):
    """A cancer cell killed at (x, y): its antigens and fate for the lymph node."""
    d = counters[C_DEAD]
    dead[d] = antigens[x, y]
    dead_fate[d] = fate
    counters[C_DEAD] = d + 1


@njit(cache=True)
def step_killers(order, ix, iy, ikind, antigen, exhaustion, kills, divisions, engaged, alive,
                 state, n, kind, idx, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                 car_negative, clone, chemokine, tgfb, ifng_source, treg_near, fp, ip, dead,
                 dead_fate, counters, seed_value=-1):
    """CTLs and CAR-T cells in the given (random) order: ``TCell.step`` (``CARTCell`` inherits
    it), with ``ImmuneCell.outlived``, ``migrate`` and ``hunt``, and ``TCell.find_target``,
    ``attack``, ``expand`` (a progenitor, ``state`` 1), ``pd1_block``, ``kill_probability``,
    ``proliferate`` and ``daughter``.
    Daughters are new slots from ``n[0]`` (the caller leaves room for one per cell); they do
    not act this hour (Mesa steps the cells that were there when the hour's order was drawn).
    Killed cancer cells are reported in ``dead``/``dead_fate``; progenitor divisions are
    counted in ``counters[C_PROGENITOR_DIVISIONS]``. ``seed_value``: ``seed``'s, if not -1.
    Returns the number of kills."""
    if seed_value != -1:
        np.random.seed(seed_value)
    scratch = np.empty((4, 8), dtype=np.int64)
    return _killers(
        order, ix, iy, ikind, antigen, exhaustion, kills, divisions, engaged, alive,
        state, n, kind, idx, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
        car_negative, clone, chemokine, tgfb, ifng_source, treg_near, fp, ip, dead,
        dead_fate, counters, scratch[0], scratch[1], scratch[2], scratch[3])


@njit(cache=True, _nrt=False)
def _killers(order, ix, iy, ikind, antigen, exhaustion, kills, divisions, engaged, alive,
             state, n, kind, idx, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
             car_negative, clone, chemokine, tgfb, ifng_source, treg_near, fp, ip, dead,
             dead_fate, counters, fx, fy, tx, ty):
    """``step_killers``' loop, compiled without reference counting (which cost most of its
    time in the inlined helpers): ``fx``, ``fy``, ``tx``, ``ty`` are 8-slot scratch."""
    h = kind.shape[1]
    taxis = (fp[F_BIAS], fp[F_DETECTION_LIMIT])  # ImmuneCell.next_site's two parameters
    total_kills = 0
    for oi in range(order.shape[0]):
        i = order[oi]
        engaged[i] = False
        car = ikind[i] == CART
        progenitor = state[i] == 1
        if car:
            lifespan = fp[F_CART_LIFESPAN_H]
        elif progenitor:
            lifespan = fp[F_PROGENITOR_LIFESPAN_H]
        else:
            lifespan = fp[F_TCELL_LIFESPAN_H]
        if _uniform() < 1.0 / lifespan:  # outlived
            _die(i, ix, iy, kind, idx, alive)
            continue
        limit = ip[I_CART_EXHAUSTION_LIMIT] if car else ip[I_TCELL_EXHAUSTION_LIMIT]
        if not progenitor and exhaustion[i] >= limit:  # exhausted: linger, barely motile
            _migrate(i, ip[I_EXHAUSTED_SPEED], ix, iy, ikind, kind, idx, chemokine, taxis, fx,
                     fy)
            continue
        # hunt
        target = _hunt(i, False, ip[I_SPEED], fp[F_INFILTRATION], fp[F_IFNG_SECRETION], ix, iy,
                       ikind, antigen, kind, idx, chemokine, taxis, antigens, antigenicity,
                       pdl1_base, mhc, pdl1_induced, car_negative, clone, engaged, ifng_source,
                       fx, fy, tx, ty)
        if target < 0:
            continue
        tgx = target // h
        tgy = target % h
        x = ix[i]
        y = iy[i]
        pdl1 = min(1.0, pdl1_base[tgx, tgy] + fp[F_PDL1_INDUCTION] * pdl1_induced[tgx, tgy])
        if progenitor:
            # expand: a division unless PD-1 blocks it; the daughter is an effector
            block = min(1.0, fp[F_PROGENITOR_PD1_INHIBITION] * pdl1
                        * (1.0 - fp[F_PD1_OCCUPANCY]))
            if _uniform() < block:
                continue
            if treg_near[x, y] or _uniform() >= fp[F_PROGENITOR_DIVISION_PROB]:
                continue
            nfree = _free_neighbours(kind, x, y, fx, fy)
            if nfree:
                j = _below(nfree)
                _spawn(i, fx[j], fy[j], ikind, antigen, exhaustion, kills, divisions, engaged,
                       alive, state, n, kind, idx, ix, iy, ip[I_MAX_DIVISIONS])
                counters[C_PROGENITOR_DIVISIONS] += 1
            continue
        # attack
        block = fp[F_PD1_INHIBITION] * pdl1 * (1.0 - fp[F_PD1_OCCUPANCY])
        if _uniform() < block:
            exhaustion[i] += 1
            continue
        prob = fp[F_KILL_PROB]
        if treg_near[x, y]:
            prob *= 1.0 - fp[F_TREG_SUPPRESSION]
        c = tgfb[x, y]
        prob *= 1.0 - fp[F_MDSC_SUPPRESSION] * (c / (c + fp[F_TGFB_HALF_MAX]))
        if _uniform() < prob:
            _report_death(tgx, tgy, FATE_KILLED, antigens, dead, dead_fate, counters)
            _clear_cancer(tgx, tgy, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                          car_negative, clone)
            total_kills += 1
            kills[i] += 1
            exhaustion[i] += 1
            # proliferate
            if divisions[i] <= 0 or treg_near[x, y]:
                continue
            if _uniform() >= fp[F_PROLIFERATION_PROB]:
                continue
            nfree = _free_neighbours(kind, x, y, fx, fy)
            if nfree:
                divisions[i] -= 1
                j = _below(nfree)
                _spawn(i, fx[j], fy[j], ikind, antigen, exhaustion, kills, divisions, engaged,
                       alive, state, n, kind, idx, ix, iy, divisions[i])
    return total_kills


@njit(cache=True)
def step_suppressors(order, ix, iy, ikind, alive, kind, idx, chemokine, bias, detection, speed,
                     treg_lifespan_h, mdsc_lifespan_h, seed_value=-1):
    """Tregs and MDSCs in the given (random) order: ``Suppressor.step`` (die with the
    lifespan, else ``migrate`` ``suppressor_speed`` moves; ``bias`` and ``detection``:
    ``chemotaxis_bias`` and ``chemokine_detection_limit``). ``seed_value``: ``seed``'s, if not
    -1."""
    if seed_value != -1:
        np.random.seed(seed_value)
    scratch = np.empty((2, 8), dtype=np.int64)
    return _suppressors(order, ix, iy, ikind, alive, kind, idx, chemokine, (bias, detection),
                        speed, treg_lifespan_h, mdsc_lifespan_h, scratch[0], scratch[1])


@njit(cache=True, _nrt=False)
def _suppressors(order, ix, iy, ikind, alive, kind, idx, chemokine, taxis, speed,
                 treg_lifespan_h, mdsc_lifespan_h, fx, fy):
    """``step_suppressors``' loop without reference counting (``_killers``)."""
    for oi in range(order.shape[0]):
        i = order[oi]
        lifespan = treg_lifespan_h if ikind[i] == TREG else mdsc_lifespan_h
        if _uniform() < 1.0 / lifespan:
            _die(i, ix, iy, kind, idx, alive)
            continue
        _migrate(i, speed, ix, iy, ikind, kind, idx, chemokine, taxis, fx, fy)


@njit(cache=True)
def _nk_target(x, y, kind, mhc, tx, ty):
    """``NKCell.find_target``: a neighbouring cancer cell with missing self (MHC-I below 1),
    chosen with weight 1 - MHC-I (``random.choices``), as a flat index, or -1."""
    w, h = kind.shape
    n = 0
    total = 0.0
    for k in range(8):
        nx = x + DX[k]
        ny = y + DY[k]
        if 0 <= nx < w and 0 <= ny < h and kind[nx, ny] == CANCER and mhc[nx, ny] < 1.0:
            tx[n] = nx
            ty[n] = ny
            n += 1
    if n == 0:
        return -1
    for k in range(n):
        total += max(0.0, 1.0 - mhc[tx[k], ty[k]])
    u = _uniform() * total
    j = 0
    cum = max(0.0, 1.0 - mhc[tx[0], ty[0]])  # the running sum again: the same additions
    while j < n - 1 and cum <= u:  # bisect_right, as random.choices
        j += 1
        cum += max(0.0, 1.0 - mhc[tx[j], ty[j]])
    return tx[j] * h + ty[j]



@njit(cache=True, inline="always")
def _hunt(i, nk, speed, infiltration, secretion, ix, iy, ikind, antigen, kind, idx, chemokine,
          taxis, antigens, antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone,
          engaged, ifng_source, fx, fy, tx, ty):
    """``ImmuneCell.hunt`` for CTLs and CAR-T cells (``TCell.find_target``) and NK cells
    (``NKCell.find_target``, ``nk``): look for a target here, otherwise move up to ``speed``
    times (``advance``), stopping as soon as one is found; on a target, the first lines every
    attack shares (``TCell.attack``, ``TCell.expand``, ``NKCell.attack``): engaged, and
    ``secretion`` of IFN-gamma at its site. The target's site, or -1."""
    target = (_nk_target(ix[i], iy[i], kind, mhc, tx, ty) if nk else
              _find_target(i, ix, iy, ikind, antigen, kind, antigens, mhc, car_negative, tx, ty))
    moves = 0
    while target < 0 and moves < speed:
        if not _advance(i, ix, iy, ikind, kind, idx, chemokine, taxis, infiltration, antigens,
                        antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone, fx, fy):
            break
        moves += 1
        target = (_nk_target(ix[i], iy[i], kind, mhc, tx, ty) if nk else
                  _find_target(i, ix, iy, ikind, antigen, kind, antigens, mhc, car_negative, tx,
                               ty))
    if target >= 0:
        engaged[i] = True
        ifng_source[ix[i], iy[i]] += secretion
    return target

@njit(cache=True)
def step_innate(order, ix, iy, ikind, kills, engaged, alive, state, kind, idx, antigens,
                antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone, chemokine,
                tgfb, oxygen, ifng_hill, ifng_source, gp, jp, dead, dead_fate, counters,
                innate_kills, seed_value=-1):
    """Macrophages and NK cells in the given (random) order.

    A macrophage (``state`` 1 = M2): ``Macrophage.step`` with ``signals``, ``polarise``,
    ``attack`` and ``roam`` (dies with its lifespan plus anti-CSF-1R depletion; polarises; an
    M1 next to cancer cells phagocytoses a random one with ``macrophage_kill_prob`` after
    releasing IFN-gamma, held there; otherwise ``ImmuneCell.advance`` up to its speed).
    An NK cell: ``NKCell.step`` with ``spent``, ``find_target``, ``attack``,
    ``kill_probability`` and ``ImmuneCell.hunt``. Kills are reported in ``dead``/``dead_fate``
    and counted in ``innate_kills`` (0: macrophages, 1: NK cells). ``seed_value``: ``seed``'s,
    if not -1."""
    if seed_value != -1:
        np.random.seed(seed_value)
    scratch = np.empty((4, 8), dtype=np.int64)
    return _innate(order, ix, iy, ikind, kills, engaged, alive, state, kind, idx, antigens,
                   antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone, chemokine,
                   tgfb, oxygen, ifng_hill, ifng_source, gp, jp, dead, dead_fate, counters,
                   innate_kills, scratch[0], scratch[1], scratch[2], scratch[3])


@njit(cache=True, _nrt=False)
def _innate(order, ix, iy, ikind, kills, engaged, alive, state, kind, idx, antigens,
            antigenicity, pdl1_base, mhc, pdl1_induced, car_negative, clone, chemokine, tgfb,
            oxygen, ifng_hill, ifng_source, gp, jp, dead, dead_fate, counters, innate_kills, fx,
            fy, tx, ty):
    """``step_innate``' loop without reference counting (``_killers``)."""
    w, h = kind.shape
    taxis = (gp[G_BIAS], gp[G_DETECTION_LIMIT])
    for oi in range(order.shape[0]):
        i = order[oi]
        engaged[i] = False
        if ikind[i] == MACROPHAGE:
            death = 1.0 / gp[G_MAC_LIFESPAN_H] + gp[G_MAC_DEPLETION]
            if _uniform() < death:
                _die(i, ix, iy, kind, idx, alive)
                continue
            x = ix[i]
            y = iy[i]
            # polarise (signals: toward M2 with hypoxia or TGF-beta, toward M1 with IFN-gamma)
            hypoxic = 1.0 if oxygen[x, y] < gp[G_HYPOXIC_THRESHOLD] else 0.0
            c = tgfb[x, y]
            to_m2 = max(hypoxic, c / (c + gp[G_TGFB_HALF_MAX]))
            to_m1 = ifng_hill[x, y]
            if state[i] == 1:
                prob = gp[G_POLARISATION_RATE] * to_m1 + gp[G_REPOLARISATION]
            else:
                prob = gp[G_POLARISATION_RATE] * to_m2
            if _uniform() < prob:
                state[i] = 1 - state[i]
            if state[i] == 0:
                n = _cancer_neighbours(kind, x, y, tx, ty)
                if n > 0:
                    engaged[i] = True
                    j = _below(n)
                    ifng_source[x, y] += gp[G_MAC_IFNG_SECRETION]
                    if _uniform() < gp[G_MAC_KILL_PROB]:
                        _report_death(tx[j], ty[j], FATE_PHAGOCYTOSED, antigens, dead,
                                      dead_fate, counters)
                        _clear_cancer(tx[j], ty[j], kind, antigens, antigenicity, pdl1_base,
                                      mhc, pdl1_induced, car_negative, clone)
                        innate_kills[0] += 1
                        kills[i] += 1
                    continue  # held by its target this hour
            for _ in range(jp[J_MAC_SPEED]):  # roam
                if not _advance(i, ix, iy, ikind, kind, idx, chemokine, taxis,
                                gp[G_INFILTRATION], antigens, antigenicity, pdl1_base, mhc,
                                pdl1_induced, car_negative, clone, fx, fy):
                    break
            continue
        # an NK cell
        if _uniform() < 1.0 / gp[G_NK_LIFESPAN_H]:  # outlived
            _die(i, ix, iy, kind, idx, alive)
            continue
        if kills[i] >= jp[J_NK_KILL_LIMIT]:  # spent
            _migrate(i, jp[J_EXHAUSTED_SPEED], ix, iy, ikind, kind, idx, chemokine, taxis, fx,
                     fy)
            continue
        # (an NK cell has no antigen: ``ikind`` stands in for the CTLs' antigen array)
        target = _hunt(i, True, jp[J_NK_SPEED], gp[G_INFILTRATION], gp[G_IFNG_SECRETION], ix,
                       iy, ikind, ikind, kind, idx, chemokine, taxis, antigens, antigenicity,
                       pdl1_base, mhc, pdl1_induced, car_negative, clone, engaged, ifng_source,
                       fx, fy, tx, ty)
        if target < 0:
            continue
        tgx = target // h
        tgy = target % h
        x = ix[i]
        y = iy[i]
        c = tgfb[x, y]
        prob = gp[G_NK_KILL_PROB] * max(0.0, 1.0 - mhc[tgx, tgy]) \
            * (1.0 - gp[G_NK_TGFB_SUPPRESSION] * (c / (c + gp[G_TGFB_HALF_MAX])))
        if _uniform() < prob:
            _report_death(tgx, tgy, FATE_NK_KILLED, antigens, dead, dead_fate, counters)
            _clear_cancer(tgx, tgy, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                          car_negative, clone)
            innate_kills[1] += 1
            kills[i] += 1
