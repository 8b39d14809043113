"""The clinical calibrations of docs/clinical.md hold: a change to the model that moves a
cohort away from the numbers it was fitted to makes a test here fail. The cohorts run on the
fast engine (statistically equivalent to the Mesa engine, docs/engines.md), each patient its
own seed, through ``experiments/clinical/run_clinical.py``'s own code."""

from __future__ import annotations

import pytest
from conftest import load_script


@pytest.mark.slow
def test_cart_cohort_keeps_its_clinical_calibration(tmp_path):
    """The burden-linked CAR-T cohort (its first 192 patients; the documented run has 384):
    - refractory (never halved) in at most 19% of patients, the top of the clinical series'
      4-19% (the first calibration, dose median 200 and target loss 3e-4, left 21-24%);
    - antigen-negative relapses within 15 points of the published 41%;
    - more of the relapses antigen-negative above the median burden at infusion than below.
    Measured when fitted (fast engine, 192 patients): 10%, 46%, 50% against 29%."""
    clinical = load_script("experiments/clinical/run_clinical.py")
    clinical.RUNS = tmp_path
    sweep = clinical.run("cart_relapse_burden", patients=192, workers=2, engine="fast")
    patients = clinical.cart_patients(sweep)
    assert len(patients) == 192
    refractory = patients["refractory"].mean()
    assert refractory <= 0.19, f"{refractory:.0%} refractory"
    relapses = patients[patients["relapsed"]]
    assert len(relapses) >= 30  # enough relapses for the shares below (68 when fitted)
    negative = relapses["negative"].mean()
    assert abs(100 * negative - clinical.PUBLISHED_CART_NEG) <= clinical.TOLERANCE, (
        f"{negative:.0%} of relapses antigen-negative")
    median = patients["burden"].median()
    above = relapses[relapses["burden"] > median]["negative"].mean()
    below = relapses[relapses["burden"] <= median]["negative"].mean()
    assert above > below, f"antigen-negative above the median {above:.0%}, below {below:.0%}"


@pytest.mark.slow
def test_checkmate_cohort_keeps_its_clinical_calibration(tmp_path):
    """The CheckMate 067 cohort (its first 96 patients; the documented run has 200):
    - each arm's objective response rate within 15 points of the trial's (57.6%, 43.7%, 19.0%),
      in the trial's order, combination > nivolumab > ipilimumab;
    - ipilimumab alone makes at least 8% of patients respond: with one priming gain for every
      patient (the calibration before, median T-cell influx 1.6) it made 4% respond (7 of 198)
      and 0 of 40 in the documented run.
    Measured when fitted (fast engine): 68%, 42%, 15% of 200 patients; 65%, 37%, 13% of these
    96 (the calibration before: 65%, 34%, 5%, so it fails)."""
    clinical = load_script("experiments/clinical/run_clinical.py")
    clinical.RUNS = tmp_path
    sweep = clinical.run("checkmate067", patients=96, workers=2, engine="fast")
    patients = clinical.patients(sweep)
    rates = {}
    for arm, published in clinical.PUBLISHED_CHECKMATE.items():
        k, n = clinical.orr(patients[patients["arm"] == arm])
        assert n >= 90, f"{arm}: only {n} of 96 patients evaluable"
        rates[arm] = 100 * k / n
        assert abs(rates[arm] - published) <= clinical.TOLERANCE, f"{arm}: {rates[arm]:.0f}%"
    assert rates["nivo_ipi"] > rates["nivolumab"] > rates["ipilimumab"] >= 8.0, rates
    text = clinical.checkmate(sweep)
    assert "the published ordering" in text and "independent drug action" in text
