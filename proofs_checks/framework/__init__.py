"""The claims framework: what a claim is, how it runs, and how its verdicts are reported.

Each module imports only those above it in this list:

* :mod:`.stats`, :mod:`.power`, :mod:`.space` -- the tests' statistics (Bonferroni levels, skew-corrected t,
  weighted chi-square quantiles), the resolution (power) of a claim, and the hypothesis space a claim declares;
* :mod:`.registry` -- :class:`~.registry.Claim`, :class:`~.registry.Evidence`, the ``@claim`` and ``@measurement``
  decorators, and the registry of every family's claims;
* :mod:`.seeds`, :mod:`.runner`, :mod:`.parallel`, :mod:`.search` -- one claim at one seed, many claims on worker
  processes or a dask cluster, and the search of a claim's hypothesis space for a counter-example;
* :mod:`.report`, :mod:`.info`, :mod:`.cli` -- the table, the Markdown/HTML report and JSON, the environment's
  versions, and the ``solvable`` command line.
"""
