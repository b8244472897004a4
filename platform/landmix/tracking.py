"""MLflow tracking: runs and sweeps' parent runs (with `landmix.registry`, the only modules that import mlflow).

One `Tracker` per Ray Train run, used on rank 0 only. The MLflow run is found again by a tag
(`landmix.run_key`, the Ray Train run's storage path + name), so a run that Ray restarted after a worker
failure logs into the SAME MLflow run instead of opening a second one. The URI comes from the config or
$MLFLOW_TRACKING_URI: a server URL, or SQLite by an absolute path (`sqlite:////abs/mlflow.db`; Ray
changes the workers' working directory, and MLflow 3.13+ refuses the old file store).
The model is logged as its checkpoint folder (state_dict + config JSON), which `landmix eval` reads.
A Tracker logs from a background thread, in order: the training loop never waits on the server. An outage (a
server restarted, a network cut) is retried until it has lasted `outage_s`; what could not be delivered by then
is listed precisely (`Tracker.undelivered`, printed by `finish`), never dropped silently.
A sweep's trials nest under one parent run (`sweep_parent_run`, `log_sweep_report`); a sweep's best model
per strategy is registered by name and alias (`landmix.registry`). What a training run logs lives with the
training loop (landmix.train_tracking); the figures it logs are landmix.figures.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

RUN_KEY_TAG = "landmix.run_key"
CHECKPOINT_ARTIFACT_PATH = "model"  # where Tracker.log_checkpoint puts the checkpoint folder
OUTAGE_S = 300.0  # how long a Tracker keeps retrying through a tracking-server outage before it gives up
RETRY_EVERY_S = 2.0  # between two tries during an outage


def resolve_uri(configured: str = "") -> str | None:
    """The tracking URI to use, or None when tracking is off ("none" or nothing configured)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri or uri.lower() == "none":
        return None
    if uri.startswith("sqlite:") and not uri.startswith("sqlite:////"):
        raise ValueError(f"tracking URI {uri!r}: use an absolute SQLite path, sqlite:////abs/path/mlflow.db")
    if "://" not in uri and not uri.startswith("sqlite:"):
        raise ValueError(
            f"tracking URI {uri!r}: MLflow 3.13+ refuses the file store; use http://host:port or sqlite:////abs.db"
        )
    return uri


def credentials() -> tuple[str | None, str | None]:
    """This machine's MLflow login, as every MLflow client here finds it: MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD, else ~/.mlflow/credentials (MLflow's own reader). Never a run's params or tags."""
    from mlflow.utils.credentials import read_mlflow_creds

    creds = read_mlflow_creds()
    return creds.username, creds.password


def _refused(err: Exception, uri: str) -> ValueError | None:
    """A ValueError saying what to set when the server refused the login (401) or the user's rights (403)."""
    from mlflow.exceptions import MlflowException

    status = err.get_http_status_code() if isinstance(err, MlflowException) else None
    if status not in (401, 403):
        return None
    user, _ = credentials()
    if status == 401:
        who = f"the password of {user!r} is wrong" if user else "no login was given"
        return ValueError(
            f"{uri} asks for a login and {who}: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "~/.mlflow/credentials, to an account on that server (docs/cluster.md)"
        )
    return ValueError(f"{uri} refused {user!r} the experiment: ask its admin for EDIT permission on it")


def experiment_id(client, uri: str, name: str) -> str:
    """The id of experiment `name`, created if needed. With a SQLite store its artifacts go beside the
    database (`<db folder>/artifacts`): MLflow's default, ./mlruns, would follow each Ray worker's working
    directory. A server stores them where it was told (`--artifacts-destination`). A server that refuses
    the login ends here with one line saying what to set."""
    try:
        exp = client.get_experiment_by_name(name)
    except Exception as err:
        if refused := _refused(err, uri):
            raise refused from None
        raise
    if exp:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:////"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process (a parallel trial) created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class Tracker:
    """Start or resume the MLflow run of one training run and log into it, from a background thread.

    Starting (or finding) the run is synchronous; every log call after it is queued and returns at once, and
    one thread delivers the queue in order. A failed delivery is retried every RETRY_EVERY_S while the outage
    lasts; once it has lasted `outage_s`, the queued calls are given up and listed in `undelivered` (what, and
    why) instead of stalling training. `finish` waits for the queue (bounded by the same outage limit) and
    prints what did not arrive. Set MLflow's own HTTP retries low (MLFLOW_HTTP_REQUEST_MAX_RETRIES) where
    an outage must be seen quickly; its defaults retry for minutes inside one call."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_key: str,
        run_name: str,
        tags: dict | None = None,
        outage_s: float = OUTAGE_S,
    ):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        exp_id = experiment_id(self.client, uri, experiment)
        found = self.client.search_runs([exp_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'")
        if found:
            self.run_id, self.resumed = found[0].info.run_id, True
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                exp_id, run_name=run_name, tags={RUN_KEY_TAG: run_key, **(tags or {})}
            )
            self.run_id, self.resumed = run.info.run_id, False
        self.experiment_id = exp_id
        self.outage_s = outage_s
        self.undelivered: list[dict] = []  # {"what", "error"} of every call given up, in order
        self.retried = 0  # failed tries that a later try delivered
        self._queue: queue.Queue = queue.Queue()
        self._down_since: float | None = None
        self._thread = threading.Thread(target=self._deliver, name="mlflow-tracker", daemon=True)
        self._thread.start()

    def _submit(self, what: str, call, *args, cleanup: str = "", **kwargs) -> None:
        self._queue.put((what, call, args, kwargs, cleanup))

    def _deliver(self) -> None:
        while (item := self._queue.get()) is not None:
            what, call, args, kwargs, cleanup = item
            while True:
                try:
                    call(*args, **kwargs)
                    self._down_since = None
                    break
                except Exception as e:  # noqa: BLE001 - any failure of the server or the network is an outage
                    error = " ".join(str(e).split())[:300]
                    self._down_since = self._down_since or time.monotonic()
                    if time.monotonic() - self._down_since > self.outage_s:
                        self.undelivered.append({"what": what, "error": error})
                        break
                    self.retried += 1
                    time.sleep(RETRY_EVERY_S)
            if cleanup:
                shutil.rmtree(cleanup, ignore_errors=True)

    def log_params(self, params: dict) -> int:
        """Log `params`; a resumed run logs only those it lacks (its first attempt may have died before logging
        them, or part-way), since MLflow refuses to change a logged param. Returns how many are logged."""
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params if self.resumed else {}
        items = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in logged]
        for i in range(0, len(items), 100):
            chunk = items[i : i + 100]
            self._submit(f"params {chunk[0].key}..", self.client.log_batch, self.run_id, params=chunk)
        return len(items)

    def artifacts(self) -> list[str]:
        """The run's top-level artifact paths (a resumed run: what its earlier attempts logged)."""
        return [a.path for a in self.client.list_artifacts(self.run_id)]

    def set_tags(self, tags: dict) -> None:
        for k, v in tags.items():
            self._submit(f"tag {k}", self.client.set_tag, self.run_id, k, str(v))

    def log_metrics(self, metrics: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k.replace("@", "_at_"), float(v), now, step) for k, v in metrics.items()]
        what = f"metrics step {step}: {', '.join(sorted(m.key for m in items))}"
        self._submit(what, self.client.log_batch, self.run_id, metrics=items)

    def log_dict(self, d: dict, name: str) -> None:
        self._submit(f"artifact {name}", self.client.log_dict, self.run_id, d, name)

    def _log_folder(self, folder: str, artifact_path: str, what: str) -> None:
        """Queue a copy of `folder` (the caller may delete it as soon as this returns) for upload."""
        tmp = tempfile.mkdtemp(prefix="landmix-mlflow-")
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        self._submit(
            f"artifacts {what}", self.client.log_artifacts, self.run_id, tmp, artifact_path, cleanup=tmp
        )

    def log_figure_files(self, files: dict[str, bytes], folder: str) -> None:
        tmp = tempfile.mkdtemp(prefix="landmix-mlflow-")  # the upload's own folder, removed once it is sent
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        what = f"artifacts {folder}/ ({', '.join(sorted(files))})"
        self._submit(what, self.client.log_artifacts, self.run_id, tmp, folder, cleanup=tmp)

    def log_checkpoint(self, ckpt_dir: str) -> None:
        """The final model: the checkpoint folder that `landmix eval --checkpoint` accepts."""
        self._log_folder(ckpt_dir, CHECKPOINT_ARTIFACT_PATH, f"{CHECKPOINT_ARTIFACT_PATH}/ (the checkpoint)")

    def flush(self, timeout_s: float | None = None) -> list[dict]:
        """Wait until everything queued so far is delivered or given up (at most about the outage limit, or
        timeout_s); returns `undelivered`."""
        if not self._thread.is_alive():  # finished: everything was delivered or given up
            return self.undelivered
        done = threading.Event()
        self._submit("flush", done.set)
        done.wait(self.outage_s + 60 if timeout_s is None else timeout_s)
        return self.undelivered

    def finish(self, status: str = "FINISHED") -> list[dict]:
        """End the run: deliver what is queued and the status, then stop the thread. Prints, precisely, what the
        server never got (an outage longer than the limit); returns that list ([] when all arrived)."""
        self._submit("run status", self.client.set_terminated, self.run_id, status=status)
        self._queue.put(None)
        self._thread.join(self.outage_s + 60)
        if self.undelivered:
            lines = "; ".join(f"{u['what']} ({u['error']})" for u in self.undelivered)
            print(
                f"MLflow run {self.run_id}: {len(self.undelivered)} logging calls never reached the server "
                f"(an outage over {self.outage_s:g} s): {lines}",
                file=sys.stderr,
                flush=True,
            )
        return self.undelivered


def runs_with_key(uri: str, experiment: str, run_key: str) -> list:
    """All MLflow runs carrying `run_key` (tests check there is exactly one after a failure)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'")


def end_run(uri: str, run_id: str, status: str, tags: dict | None = None) -> None:
    """End a run that its own process could not end (a trial stopped by the scheduler), with tags saying why."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for k, v in (tags or {}).items():
        client.set_tag(run_id, k, str(v))
    client.set_terminated(run_id, status=status)


def list_artifacts(uri: str, run_id: str, path: str | None = None) -> list[str]:
    from mlflow.tracking import MlflowClient

    return [a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id, path)]


def get_run(uri: str, run_id: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri).get_run(run_id)


# ------------------------------------------------------------------------------ sweeps: the parent run
SWEEP_TAG = "landmix.sweep"


def sweep_parent_run(uri: str | None, experiment: str, id_file: Path, params: dict) -> str:
    """The MLflow parent run of a sweep: found again through `id_file` (a resumed sweep), or created.

    Every trial's run carries `mlflow.parentRunId` = this id, which is what nests it in the UI.
    Returns "" when tracking is off.
    """
    if uri is None:
        return ""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    id_file = Path(id_file)
    if id_file.exists():
        run_id = id_file.read_text().strip()
        if gone := _missing_reason(client, uri, run_id, id_file):
            print(f"parent run {run_id} from {id_file} {gone}; starting a new parent run")
        else:
            client.update_run(run_id, status="RUNNING")
            return run_id
    exp_id = experiment_id(client, uri, experiment)
    run = client.create_run(
        exp_id, run_name=experiment, tags={SWEEP_TAG: experiment, "landmix.role": "sweep"}
    )
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    id_file.parent.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run.info.run_id)
    return run.info.run_id


def _missing_reason(client, uri: str, run_id: str, id_file: Path) -> str:
    """Why a resumed sweep's parent run is gone ("" when it is there to resume). Only a store that answers
    "no such run" (a new server, a deleted run: the id file outlived the store) lets the sweep start a new
    parent; a server that cannot be reached or refuses us stops the sweep, or its next trials would nest
    under a second parent and the earlier ones stay under the first."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code in (
            ErrorCode.Name(RESOURCE_DOES_NOT_EXIST),
            ErrorCode.Name(INVALID_PARAMETER_VALUE),
        ):
            return f"is not in {uri} ({err.message})"
        reason = err
    except Exception as err:  # a connection, timeout or TLS error: whatever it is, not "no such run"
        reason = err
    else:
        return f"was deleted from {uri}" if run.info.lifecycle_stage == "deleted" else ""
    raise RuntimeError(
        f"cannot resume the sweep's parent run {run_id} (named in {id_file}): {uri} did not answer whether it "
        f"exists ({type(reason).__name__}: {reason}). Start the tracking server or fix MLFLOW_TRACKING_URI and "
        f"its credentials, then run again; delete {id_file} only to start a new parent run on purpose."
    ) from reason


def log_sweep_report(
    uri: str | None,
    parent_run_id: str,
    files: dict[str, Path],
    compute: dict[str, float],
    n_trials: int,
    n_failed: int,
    best: dict | None = None,
    description: str = "",
) -> None:
    """Attach the comparison to the parent run: report files under `comparison/`, compute, trial counts,
    and the best trial (chosen on validation NME; the parent's `val_nme` and `test_nme` are that trial's, its
    name a tag), so the parent's row in the MLflow UI already answers "which mix won". `description` (the
    study's verdict, markdown) becomes the run's description, the first thing its page shows.

    The parent ends FAILED when any trial failed, so an incomplete comparison is never mistaken for a whole one.
    """
    if uri is None or not parent_run_id:
        return
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for path in files.values():
        client.log_artifact(parent_run_id, str(path), "comparison")
    now = int(time.time() * 1000)
    values = {**compute, "n_trials": n_trials, "n_failed_trials": n_failed}
    if best:
        values["val_nme"], values["test_nme"] = best["val_nme"], best["nme"]
        client.set_tag(parent_run_id, "landmix.best_trial", best["run"])
    client.log_batch(parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
    if description:
        client.set_tag(parent_run_id, "mlflow.note.content", description)
    client.set_terminated(parent_run_id, status="FAILED" if n_failed else "FINISHED")


def log_file(uri: str, run_id: str, path: str | Path, folder: str) -> None:
    """Attach one file (a translator .npz, a report) to a run under `folder/`."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).log_artifact(run_id, str(path), folder)


def child_runs(uri: str, parent_run_id: str) -> list:
    """The runs nested under a parent (tests and the report read them back)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        max_results=1000,
    )


# ------------------------------------------------------------------------------ the model registry
