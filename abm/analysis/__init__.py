"""The analysis library: what a run's results mean, written once.

Used alike by the sweep runner's summary, the validation analyses in
``experiments/validation/`` and the tests:

- :mod:`abm.analysis.outcomes`: a run's outcome class (eliminated / escape / controlled) and
  summary row;
- :mod:`abm.analysis.paired`: paired-seed comparisons (relative benefit, median [range], Bliss
  excess);
- :mod:`abm.analysis.growth`: the burden time series (log-log slope, growth-rate ratio, burden
  on a day, day cleared);
- :mod:`abm.analysis.kills`: kills per CTL per day, kill chance against neighbouring CTLs;
- :mod:`abm.analysis.spatial`: measurements on the site layers (distance to CTLs, PD-L1 by
  distance band and near/far, PD-L1/CTL co-localisation, tumour outline, CTL densities by
  region and the inflamed/excluded ratio, contacts);
- :mod:`abm.analysis.response`: RECIST-like responses of a cohort's runs (lesion diameter,
  CR / PR / SD / PD, best % change, progression-free time) and Wilson intervals;
- :mod:`abm.analysis.runs`: a sweep directory's runs grouped by point (arm, factor values), in
  seed order, with their summary rows, time series and probe results;
- :mod:`abm.analysis.probes`: measurements taken *during* a run (``snapshot``: the site layers
  on a day; ``contacts``: cancer cells' CTL neighbours and deaths per hour;
  ``antigen_loss``: cells lacking the founder / vaccine antigens at the end), named in a sweep
  spec's ``[probes]`` table and stored with the run.
"""
