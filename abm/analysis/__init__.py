"""The analysis library: what a run's results mean, written once.

Used alike by the sweep runner's summary, the validation analyses in
``experiments/validation/`` and the tests:

- :mod:`abm.analysis.outcomes`: a run's outcome class (eliminated / escape / controlled) and
  summary row;
- :mod:`abm.analysis.paired`: paired-seed comparisons (relative benefit, median [range]);
- :mod:`abm.analysis.spatial`: measurements on the site layers (distance to CTLs, tumour
  outline, CTL densities by region, contacts);
- :mod:`abm.analysis.probes`: measurements taken *during* a run (spatial snapshots, kill
  contacts), named in a sweep spec's ``[probes]`` table and stored with the run.
"""
