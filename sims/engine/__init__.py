"""The engine every family runs on: one driver, the integrators, the update rules and the backends.

Read it bottom-up, as each module imports only those above it in this list:

* :mod:`._validate`, :mod:`.backend`, :mod:`.matmul`, :mod:`.sync` -- argument checks; the array namespace, dtype,
  device and seeded host draws; batched matrix chains; host-device synchronisation points;
* :mod:`.tableau`, :mod:`.rk`, :mod:`.rosenbrock`, :mod:`.controller` -- Butcher tableaux (validated), the
  explicit Runge-Kutta and Rosenbrock steps, the per-run step-size controller;
* :mod:`.state`, :mod:`.status`, :mod:`.stopping`, :mod:`.recording` -- the batched loop state, run statuses and
  their messages, stopping events, observables at the requested times;
* :mod:`.rules`, :mod:`.discrete`, :mod:`.flow`, :mod:`.stiff`, :mod:`.compiled` -- discrete update rules (GD,
  SGD, SAM, preconditioned GD, sub-gradient) and their loop, gradient flow (adaptive Dormand-Prince), the stiff
  switch, compiled loops for torch and JAX;
* :mod:`.trajectory`, :mod:`.driver` -- the frozen result and :func:`~.driver.train`, the one entry point the
  families call.
"""
