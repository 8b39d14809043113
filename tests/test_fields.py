"""The field solver: exact in time, stable, mass-conserving with closed boundaries."""

import math

import numpy as np
import pytest

from abm.fields import Field


def test_mass_is_conserved_with_zero_decay_and_closed_boundaries():
    rng = np.random.default_rng(0)
    field = Field("f", (37, 23), diffusion_um2_s=100.0, half_life_h=math.inf)
    field.data[...] = rng.random((37, 23))
    before = field.total()
    for _ in range(50):
        field.step()
    assert field.total() == pytest.approx(before, rel=1e-10)
    # and it has spread out: the field is nearly uniform now
    assert field.data.std() < 1e-3 * field.data.mean()


def test_sources_add_exactly_their_amount_when_nothing_decays():
    field = Field("f", (30, 30), diffusion_um2_s=10.0, half_life_h=math.inf)
    source = np.zeros((30, 30))
    source[3, 4] = 2.5
    for _ in range(10):
        field.step(source)
    assert field.total() == pytest.approx(25.0, rel=1e-10)


def test_uniform_field_decays_with_its_half_life():
    field = Field("f", (20, 20), diffusion_um2_s=100.0, half_life_h=3.0)
    field.data[...] = 8.0
    for _ in range(6):  # two half-lives
        field.step()
    assert np.allclose(field.data, 2.0, rtol=1e-9)


def test_point_spread_has_variance_two_d_t_per_axis():
    """Diffusion from a point: variance 2*D*t along each axis (D in sites^2 per hour)."""
    n = 121
    d_um2_s = 1.0  # 1 um^2/s on 15 um sites = 16 sites^2/h
    field = Field("f", (n, n), diffusion_um2_s=d_um2_s, half_life_h=math.inf)
    field.data[n // 2, n // 2] = 1.0
    hours = 4
    for _ in range(hours):
        field.step()
    x = np.arange(n) - n // 2
    variance_x = float((field.data.sum(axis=1) * x**2).sum() / field.total())
    expected = 2 * d_um2_s * 3600 / 15.0**2 * hours
    assert variance_x == pytest.approx(expected, rel=0.01)


def test_large_steps_stay_stable_and_non_negative():
    field = Field("f", (50, 50), diffusion_um2_s=1e4, half_life_h=0.1)
    source = np.zeros((50, 50))
    source[0, 0] = 1e3
    for _ in range(20):
        field.step(source)
    assert np.isfinite(field.data).all()
    assert (field.data >= 0).all()
    assert field.data[0, 0] > field.data[49, 49]
