"""The deployments beyond one machine (deploy/): the Kubernetes and Celery code locations run every
job on their executor, training steps are in the training pool and get pods sized for them, and
the Helm values, the instance config, the image and the PostgreSQL spec hold together: a shared
volume at FEATRIX_HOME, the warehouse URL from a secret, the pool and run-queue limits. Nothing
here starts a cluster or a broker; building the definitions takes well under a second."""

from __future__ import annotations

import importlib
import re
import shutil
import tomllib
from importlib.metadata import version
from types import SimpleNamespace

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster_celery import celery_executor
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import UserDefinedDagsterK8sConfig
from packaging.requirements import Requirement
from packaging.version import Version

from assets.definitions import STEP_PROCESSES, build_definitions, local_executor
from assets.jobs import QUEUE_TAG, REFRESH, RETRAIN
from assets.pools import PRIORITY_TAG, TRAINING_POOL
from featrix_pipeline.spec import load_spec
from featrix_pipeline.store import MODEL_STAGES
from tests.conftest import DEMO_SPEC, REPO
from tests.house.test_self_contained import OUTSIDE

DEPLOY = REPO / "deploy"
PG_SPEC = DEPLOY / "specs" / "nycflights13-postgres.yaml"
SECRET_URL = "postgresql://featrix:Very-Secret-9@warehouse.invalid:5432/featrix"
IMAGE_ROOT = "/opt/featrix"  # where deploy/k8s/Dockerfile puts the repository


@pytest.fixture()
def deploy_env(tmp_path, monkeypatch):
    """The environment a pod or worker gets: the PostgreSQL spec, its URL from a secret, a home."""
    monkeypatch.setenv("FEATRIX_SPEC", str(PG_SPEC))
    monkeypatch.setenv("FEATRIX_WAREHOUSE_URL", SECRET_URL)
    monkeypatch.setenv("FEATRIX_HOME", str(tmp_path))
    monkeypatch.setenv("FEATRIX_TORCH_THREADS", "2")
    monkeypatch.delenv(STEP_PROCESSES, raising=False)  # the caller's own setting does not leak in
    return tmp_path


def code_location(module: str) -> dg.Definitions:
    """``defs`` of a deploy module, built under the current environment (as a code server loads it)."""
    return importlib.reload(importlib.import_module(module)).defs


def jobs(defs: dg.Definitions) -> dict[str, dg.JobDefinition]:
    return {"__ASSET_JOB": defs.resolve_implicit_global_asset_job_def(),
            REFRESH: defs.resolve_job_def(REFRESH), RETRAIN: defs.resolve_job_def(RETRAIN)}


def executor_config(executor: dg.ExecutorDefinition) -> dict:
    """The config the executor starts with when a run gives it none (as the Launchpad does)."""
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def training_ops(defs: dg.Definitions) -> set[str]:
    return {a.op.name for a in defs.assets if a.key.path[-1] in MODEL_STAGES}


def values() -> dict:
    return yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())


def featrix_deployment() -> dict:
    (deployment,) = values()["dagster-user-deployments"]["deployments"]
    return deployment


# --- Kubernetes ------------------------------------------------------------------------------------


def test_every_job_of_the_k8s_code_location_runs_on_the_k8s_job_executor(deploy_env):
    for name, job in jobs(code_location("deploy.k8s.definitions")).items():
        assert job.executor_def.executor_creation_fn is k8s_job_executor.executor_creation_fn, name
        assert job.executor_def.name == "k8s"


def test_the_local_code_location_keeps_running_steps_in_one_process(deploy_env):
    defs = build_definitions(load_spec())
    assert {job.executor_def for job in jobs(defs).values()} == {dg.in_process_executor}


def test_step_processes_choose_a_forkserver_executor_with_that_many_steps_at_once(deploy_env, monkeypatch):
    monkeypatch.setenv(STEP_PROCESSES, "2")
    executors = {job.executor_def for job in jobs(build_definitions(load_spec())).values()}
    assert len(executors) == 1
    (ex,) = executors
    assert ex.executor_creation_fn is dg.multiprocess_executor.executor_creation_fn
    config = ex.apply_config_mapping({}).value["config"]  # what a run of these jobs gets
    assert config["max_concurrent"] == 2 and config["start_method"] == {"forkserver": {}}
    for unset in ({}, {STEP_PROCESSES: ""}, {STEP_PROCESSES: "1"}):
        assert local_executor(unset) is dg.in_process_executor
    for bad in ("two", "0", "-1", "1.5"):
        with pytest.raises(ValueError, match=f"{STEP_PROCESSES}=.*whole number"):
            local_executor({STEP_PROCESSES: bad})


def test_training_steps_that_others_wait_on_go_first(deploy_env):
    prio = {a.key.to_user_string(): int(a.op.tags.get(PRIORITY_TAG, 0)) for a in build_definitions(load_spec()).assets
            if a.op.pool == TRAINING_POOL}
    # flights' space feeds the planes' relational space, its predictor and the flights predictor
    assert prio["flights/embedding_space"] == 3 and prio["planes/relational_space"] == 1
    assert max(prio.values()) == prio["flights/embedding_space"]
    for side in ("airports/embedding_space", "weather/embedding_space", "planes/embedding_space"):
        assert prio[side] == 0 < prio["planes/relational_space"]
    assert prio["arr_delay15/predictor"] == prio["plane_manufacturer/predictor"] == 0


def test_training_assets_and_only_they_are_in_the_training_pool(deploy_env):
    defs = code_location("deploy.k8s.definitions")
    pools = {a.key.to_user_string(): a.op.pool for a in defs.assets}
    training = {k for k in pools if k.split("/")[-1] in MODEL_STAGES}
    assert {k.split("/")[-1] for k in training} == set(MODEL_STAGES), "the demo has every kind of model"
    assert {k: p for k, p in pools.items() if p is not None} == dict.fromkeys(training, TRAINING_POOL)


def test_training_steps_get_one_cpu_per_torch_thread_and_every_step_a_size(deploy_env):
    defs = code_location("deploy.k8s.definitions")
    config = executor_config(defs.resolve_job_def(RETRAIN).executor_def)
    per_step = config["per_step_k8s_config"]
    assert set(per_step) == training_ops(defs)
    for step, step_config in per_step.items():
        resources = UserDefinedDagsterK8sConfig.from_dict(step_config).container_config["resources"]
        assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "2", step  # FEATRIX_TORCH_THREADS
        assert resources["requests"]["memory"] and resources["limits"]["memory"], step
    every = UserDefinedDagsterK8sConfig.from_dict(config["step_k8s_config"]).container_config["resources"]
    assert every["requests"]["cpu"] and every["requests"]["memory"] and every["limits"]["memory"]


def test_a_thread_count_that_is_no_number_stops_the_code_location_naming_the_variable(deploy_env, monkeypatch):
    monkeypatch.setenv("FEATRIX_TORCH_THREADS", "two")
    with pytest.raises(ValueError, match="FEATRIX_TORCH_THREADS"):
        code_location("deploy.k8s.definitions")


def test_the_helm_values_share_one_volume_at_featrix_home_and_read_the_warehouse_from_a_secret():
    deployment = featrix_deployment()
    env = deployment["env"]
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    volume = next(v for v in deployment["volumes"] if v["name"] == mounts[env["FEATRIX_HOME"]])
    pvc = yaml.safe_load((DEPLOY / "k8s" / "featrix-home-pvc.yaml").read_text())
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "step pods on different nodes mount it at once"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run and step pods get env, secret, volume"
    # the spec the pods load is the PostgreSQL one, whose URL variable comes from the secret
    assert env["FEATRIX_SPEC"].startswith(IMAGE_ROOT + "/")
    spec_path = REPO / env["FEATRIX_SPEC"].removeprefix(IMAGE_ROOT + "/")
    assert spec_path == PG_SPEC
    url_env = yaml.safe_load(spec_path.read_text())["warehouse"]["url_env"]
    assert url_env not in env, "the URL (with its password) is no plain env value"
    assert [s["name"] for s in deployment["envSecrets"]] == ["featrix-warehouse"]
    assert url_env in (DEPLOY / "k8s" / "values.yaml").read_text(), "values.yaml says which key the secret holds"
    assert env["FEATRIX_TORCH_THREADS"].isdigit()
    assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", "deploy.k8s.definitions"]
    assert values()["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_helm_values_limit_the_training_pool_per_step_and_pipeline_runs_to_one():
    concurrency = values()["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["granularity"] == "op", "per step: at run granularity a run's steps share one slot"
    assert concurrency["pools"]["defaultLimit"] >= 1
    (key,) = QUEUE_TAG
    assert {"key": key, "limit": 1} in concurrency["runs"]["tagConcurrencyLimits"]
    queued = values()["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] is None and not queued["tagConcurrencyLimits"], \
        "Dagster refuses run limits set both here and under concurrency"


def test_the_helm_concurrency_block_renders_to_an_instance_config_dagster_accepts(tmp_path):
    """What the chart writes into dagster.yaml from ``concurrency`` (camelCase to snake_case), next
    to the queued run coordinator it always renders, passes Dagster's own validation."""
    c = values()["concurrency"]
    instance = {"run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
                "concurrency": {"pools": {"default_limit": c["pools"]["defaultLimit"],
                                          "granularity": c["pools"]["granularity"]},
                                "runs": {"tag_concurrency_limits": c["runs"]["tagConcurrencyLimits"]}}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["granularity"] == "op"


def test_no_secret_is_written_into_the_helm_values():
    text = (DEPLOY / "k8s" / "values.yaml").read_text()
    assert not re.search(r"://[^/\s:@]+:[^@\s]+@", text.replace("PASSWORD@", "")), "a URL with a password"
    assert "postgresqlPassword" not in text and values()["generatePostgresqlPasswordSecret"] is False


def test_the_image_installs_the_lock_on_cpu_torch_and_serves_the_k8s_code_location():
    dockerfile = (DEPLOY / "k8s" / "Dockerfile").read_text()
    torch = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
                 if r.startswith("torch"))
    assert f"pip install {torch} --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert dockerfile.index("whl/cpu") < dockerfile.index("pip install -r requirements.lock"), "CPU torch first"
    assert "pip install --no-deps -e ." in dockerfile
    assert f"WORKDIR {IMAGE_ROOT}" in dockerfile and '"deploy.k8s.definitions"' in dockerfile
    assert f"FEATRIX_SPEC={IMAGE_ROOT}/deploy/specs/{PG_SPEC.name}" in dockerfile


# --- Celery ----------------------------------------------------------------------------------------


def test_every_job_of_the_celery_code_location_runs_on_the_celery_executor(deploy_env):
    for name, job in jobs(code_location("deploy.celery.definitions")).items():
        assert job.executor_def.executor_creation_fn is celery_executor.executor_creation_fn, name
        assert job.executor_def.name == "celery"


def test_the_celery_broker_and_backend_come_from_the_environment_when_a_run_starts(deploy_env, monkeypatch):
    executor = code_location("deploy.celery.definitions").resolve_job_def(RETRAIN).executor_def
    monkeypatch.setenv("CELERY_BROKER_URL", "pyamqp://featrix:Broker-Secret@rabbit.invalid//")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://:Backend-Secret@redis.invalid:6379/0")
    config = executor_config(executor)
    assert config["broker"] == "pyamqp://featrix:Broker-Secret@rabbit.invalid//"
    assert config["backend"] == "redis://:Backend-Secret@redis.invalid:6379/0"
    monkeypatch.delenv("CELERY_BROKER_URL")
    resolved = executor.config_schema.resolve_config({})
    assert not resolved.success and "CELERY_BROKER_URL" in str(resolved.errors)
    source = (DEPLOY / "celery" / "definitions.py").read_text()
    assert "://" not in source, "no broker URL is written into the code location"


def test_the_celery_app_a_run_starts_talks_to_the_broker_the_workers_listen_on(deploy_env, monkeypatch):
    """The executor the run builds, and the app it hands its steps to (no connection is made)."""
    from dagster_celery.make_app import make_app

    monkeypatch.setenv("CELERY_BROKER_URL", "pyamqp://featrix@rabbit.invalid//")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "rpc://")
    executor_def = code_location("deploy.celery.definitions").resolve_job_def(RETRAIN).executor_def
    executor = executor_def.executor_creation_fn(SimpleNamespace(executor_config=executor_config(executor_def)))
    assert executor.broker == "pyamqp://featrix@rabbit.invalid//" and executor.backend == "rpc://"
    app = make_app(executor.app_args())
    assert app.conf.broker_url == "pyamqp://featrix@rabbit.invalid//" and app.conf.result_backend == "rpc://"


def test_the_celery_workspace_loads_the_celery_code_location():
    (location,) = yaml.safe_load((DEPLOY / "celery" / "workspace.yaml").read_text())["load_from"]
    assert location["python_module"]["module_name"] == "deploy.celery.definitions"


def test_the_celery_instance_config_is_valid_shared_and_limits_pool_and_runs(tmp_path):
    shutil.copy(DEPLOY / "celery" / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"} and db["hostname"] == {"env": "DAGSTER_PG_HOST"}
    assert config["concurrency"]["pools"]["granularity"] == "op" and config["concurrency"]["pools"]["default_limit"] >= 1
    (key,) = QUEUE_TAG
    assert {"key": key, "limit": 1} in config["concurrency"]["runs"]["tag_concurrency_limits"]


# --- shared pieces -----------------------------------------------------------------------------------


def test_the_postgres_spec_is_the_demo_spec_with_only_its_warehouse_changed(deploy_env):
    demo, pg = yaml.safe_load(DEMO_SPEC.read_text()), yaml.safe_load(PG_SPEC.read_text())
    assert pg.pop("warehouse") == {"url_env": "FEATRIX_WAREHOUSE_URL"}
    demo.pop("warehouse")
    assert pg == demo
    spec = load_spec(PG_SPEC)
    assert spec.warehouse_url == SECRET_URL and spec.warehouse_url_env == "FEATRIX_WAREHOUSE_URL"
    assert "Very-Secret-9" not in repr(spec)
    defs = code_location("deploy.k8s.definitions")
    assert "Very-Secret-9" not in repr(defs.resources["warehouse"]), "the UI shows the variable's name only"


def test_the_deploy_extra_is_locked_at_the_installed_versions():
    extra = [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())
             ["project"]["optional-dependencies"]["deploy"]]
    lock = {Requirement(line).name.lower(): Requirement(line)
            for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")}
    assert {r.name for r in extra} == {"dagster-k8s", "dagster-celery", "dagster-postgres"}
    for req in extra:
        locked = next(iter(lock[req.name].specifier)).version
        assert req.specifier.contains(Version(locked)) and version(req.name) == locked, req


def test_the_deploy_docs_point_nowhere_outside_the_repository():
    pages = [DEPLOY / "README.md", REPO / "README.md"]
    hits = [f"{p.name}:{i}: {line.strip()[:80]}" for p in pages for i, line in enumerate(p.read_text().splitlines(), 1)
            if OUTSIDE.search(line) or (p.parent == DEPLOY and "http" in line)]
    assert hits == []
    assert "## Scale out" in (REPO / "README.md").read_text()
