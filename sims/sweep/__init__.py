"""Parameter sweeps that survive interruption (the face of :mod:`solvable.sims.sweep`).

* :mod:`.runner` -- :func:`run` (joblib, dask or any executor; resumable) and :func:`table`;
* :mod:`.config` -- the registered tasks (:data:`TASKS`), grids and TOML sweep files;
* :mod:`.store` -- the directory store: one JSON file per point, named by a stable hash.
"""

from .config import TASKS, SweepConfig, check_n_jobs, check_params, get_task, grid, load_config
from .runner import run, table, task_id
from .store import Store, canonical, json_result, point_key

__all__ = ["TASKS", "Store", "SweepConfig", "canonical", "check_n_jobs", "check_params", "get_task", "grid", "json_result",
           "load_config", "point_key", "run", "table", "task_id"]
