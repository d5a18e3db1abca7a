"""The concurrency pool of the training steps, named in one place.

Each embedding space, relational space and predictor trains for minutes on every thread torch is
given. The Dagster instance's ``concurrency: pools:`` settings cap how many steps of a pool run at
once across all runs, whatever executor runs them (in one process, in Kubernetes pods, on Celery
workers): that keeps a scaled-out deployment from stacking training steps onto the same machines.
An instance that sets no limit (the local one scripts/bootstrap.sh writes) runs them unlimited, so
nothing changes on one machine.
"""

TRAINING_POOL = "featrix_training"
