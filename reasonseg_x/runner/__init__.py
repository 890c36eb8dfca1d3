"""The eval runner: drives a predictor over a split and keeps the work safe.

``loop`` batches queries (OOM halving, per-sample error capture), ``store`` appends predictions
crash-safely, ``record`` is the only reader and writer of ``run.json`` and says which samples a run
covers, ``runinfo`` describes the run's identity and environment, ``shards`` splits samples,
``merge`` joins shard outputs, ``distributed`` runs torchrun/accelerate ranks, ``rundir``
names the default run folder, and ``evaluate`` ties them together (``run_eval``). Heavy imports
happen inside functions.
"""

from reasonseg_x.runner.evaluate import EvalConfig, EvalOutcome, run_eval
from reasonseg_x.runner.merge import MergeOutcome, merge_runs
from reasonseg_x.runner.shards import Shard, select_shard

__all__ = ["EvalConfig", "EvalOutcome", "run_eval", "MergeOutcome", "merge_runs", "Shard", "select_shard"]
