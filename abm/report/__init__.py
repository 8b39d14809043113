"""Reports on a sweep directory: plots (PNG), a Markdown summary, and CSV export.

``abm report DIR`` writes into ``DIR/report/``:

* ``outcome_by_parameter.png``: the chosen outcome against the varied parameters: a heatmap of
  the mean for two factors; mean and spread (SD) across replicates, with each replicate as a dot,
  for one factor (or for each factor, averaged over the others, for three or more); a scatter per
  sampled parameter for ``lhs`` / ``sobol`` samples;
* ``outcome_classes.png``: the fraction of runs eliminated / controlled / escaped at each point;
* ``timeseries.png``: the mean and the band mean +/- SD across replicates of one time-series
  column per point, on the days where at least half of the point's runs still have a value
  (or every run, coloured by its outcome, when there are many points; or each outcome class's
  median and quantile bands, by the same rule, when there are many runs);
* ``sobol.png`` (``sobol`` samples): first-order and total Sobol indices (SALib) of the outcome,
  with their 95% confidence intervals;
* ``report.md``: the question, the setup, a table per point, and the Sobol indices.

A cohort (a sweep with ``[patients]``, ``docs/cohorts.md``) gets instead:

* ``waterfall.png``: each patient's best % change of lesion diameter from baseline, sorted,
  coloured by best overall response, one panel per arm;
* ``spider.png``: each patient's % change over time from baseline, one panel per arm;
* ``km.png``: progression-free survival per arm (lifelines' Kaplan-Meier estimate with its 95%
  confidence band);
* ``report.md``: best overall responses per arm, the objective response rate per arm and per
  stratum with 95% Wilson intervals, the paired difference of each treated arm against the
  untreated one (the same patients), and the median progression-free time.

Derived outcomes: besides the numeric columns of ``summary.parquet``, ``escaped``,
``eliminated`` and ``controlled`` are 0/1 per run, so their mean over replicates is a fraction
(e.g. ``--outcome escaped`` gives the probability of escape at each point).

The package: ``base`` (a sweep directory read back, and the helpers the reports share),
``sweeps`` (a sweep's report), ``cohort`` (a cohort's report) and ``export`` (the CSV export).
"""

from abm.report.base import (
    CLASS_COLOURS,
    NOT_AVAILABLE,
    OUTCOME_CLASSES,
    PartialSweep,
    ReportError,
    Sweep,
    check_choices,
    series_columns,
)
from abm.report.cohort import (
    cohort_patients,
    median_pfs,
    paired_difference,
    plot_km,
    plot_spider,
    plot_waterfall,
    reference_arm,
    strata,
    write_cohort_report,
)
from abm.report.export import (
    EXPORT_ABOUT,
    EXPORT_FILES,
    EXPORT_FORMAT,
    csv_ready,
    export_about,
    export_csv,
    iter_runs,
)
from abm.report.sweeps import (
    load_series,
    per_point,
    plot_outcome_by_parameter,
    plot_outcome_classes,
    plot_sobol,
    plot_timeseries,
    sobol_indices,
    write_report,
)

__all__ = [
    "CLASS_COLOURS", "EXPORT_ABOUT", "EXPORT_FILES", "EXPORT_FORMAT", "NOT_AVAILABLE",
    "OUTCOME_CLASSES", "PartialSweep", "ReportError", "Sweep", "check_choices",
    "cohort_patients", "csv_ready", "export_about", "export_csv", "iter_runs", "load_series",
    "median_pfs", "paired_difference", "per_point", "plot_km", "plot_outcome_by_parameter",
    "plot_outcome_classes", "plot_sobol", "plot_spider", "plot_timeseries", "plot_waterfall",
    "reference_arm", "series_columns", "sobol_indices", "strata", "write_cohort_report",
    "write_report",
]
