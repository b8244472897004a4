"""The MLflow model registry: a run's logged checkpoint folder registered as the next version of a name, with
an alias pointing at it (`register_model`), the names a sweep registers (`registered_model_name`), and a
`models:/NAME@ALIAS` (or `models:/NAME/VERSION`) URI resolved to its version (`version_of`) and downloaded as a
checkpoint folder (`download`), as `landmix serve` and `landmix export` read them.

    from landmix import registry
    registry.register_model(uri, "landmix-study.pretrain_finetune", run_id, tags={"val_nme": 0.03})
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from landmix.tracking import CHECKPOINT_ARTIFACT_PATH


def registered_model_name(experiment: str, strategy: str) -> str:
    """The registry name of a sweep's best model of one strategy: `<experiment>.<strategy>`, e.g.
    `landmix-study.pretrain_finetune`. MLflow refuses '/' and ':' in a name, and `models:/` URIs read '@' as
    an alias and '/' as a version, so anything outside [A-Za-z0-9_-] becomes '-' (same input, same name)."""
    parts = [re.sub(r"[^A-Za-z0-9_-]+", "-", str(p)).strip("-") for p in (experiment, strategy)]
    if not all(parts):
        raise ValueError(f"registered_model_name({experiment!r}, {strategy!r}): both need a letter or digit")
    return ".".join(parts)


def _tag_value(v) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list | tuple) else str(v)


def register_model(
    uri: str,
    name: str,
    run_id: str,
    artifact_path: str = CHECKPOINT_ARTIFACT_PATH,
    tags: dict | None = None,
    description: str = "",
    alias: str = "best",
) -> dict:
    """Register the checkpoint folder a run logged (`Tracker.log_checkpoint` logs it under "model") as the
    next version of registered model `name` (created when missing), and point `alias` at that version, so
    `models:/<name>@best` is always the latest registration. `tags` go on the version (metrics, strategy,
    n_real, shard hashes, translator and generator versions); dicts and lists are stored as JSON, and '@' in a
    key becomes '_at_' as in `Tracker.log_metrics`. Returns {"name", "version" (int), "source", "run_id"}.

    The folder is not an MLflow "MLmodel" flavour, so `mlflow.register_model("runs:/<id>/model", name)`
    refuses it (it then looks for a LoggedModel). The version's source is the run's own artifact URI + path
    (`mlflow-artifacts:/...` on a server, `file:///abs/...` with SQLite), as MLflow's
    `create_model_version` example does; the server accepts it because it lies inside that run's artifacts.

    A team pulls the winner by name (the folder `winner/` then holds model.pt, resume.pt and meta.json, which
    `landmix eval --checkpoint winner` reads):

        import mlflow
        mlflow.set_tracking_uri(uri)  # or export MLFLOW_TRACKING_URI=http://head:5000
        mlflow.artifacts.download_artifacts("models:/landmix-study.pretrain_finetune@best", dst_path="winner")

    Set the URI globally: MLflow 3.17 resolves a `models:/` name through the global registry URI (which
    follows the tracking URI) and ignores download_artifacts' own `registry_uri=` argument for it.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INVALID_PARAMETER_VALUE,
        RESOURCE_ALREADY_EXISTS,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    missing = (ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE))
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code not in missing:
            raise
        hint = "pass the run id of a trial (its Tracker's run_id, or a child run of the sweep's parent run)"
        raise ValueError(f"run {run_id!r} is not in {uri} ({err.message}); {hint}") from err
    if not client.list_artifacts(run_id, artifact_path):
        present = sorted(a.path for a in client.list_artifacts(run_id))
        hint = "log the checkpoint folder first (Tracker.log_checkpoint) or pass the artifact_path it used"
        raise ValueError(f"run {run_id} has no artifacts under {artifact_path!r} (it has {present}); {hint}")
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise ValueError(f"registered model {name!r}: {err.message}; see registered_model_name") from err
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path.strip('/')}"
    version_tags = {k.replace("@", "_at_"): _tag_value(v) for k, v in (tags or {}).items()}
    mv = client.create_model_version(name, source, run_id=run_id, tags=version_tags, description=description)
    client.set_registered_model_alias(name, alias, mv.version)
    return {"name": name, "version": int(mv.version), "source": mv.source, "run_id": run_id}


def _name_and_pointer(model_uri: str) -> tuple[str, str, str]:
    """(name, alias, version) of `models:/NAME@ALIAS` or `models:/NAME/VERSION` (one of alias and version "")."""
    if not model_uri.startswith("models:/"):
        raise ValueError(f"{model_uri!r}: a registry URI reads models:/NAME@ALIAS or models:/NAME/VERSION")
    rest = model_uri.removeprefix("models:/")
    name, _, alias = rest.partition("@")
    name, _, version = name.partition("/")
    if not name or not (alias or version):
        raise ValueError(
            f"{model_uri!r}: name the alias or the version (models:/NAME@ALIAS, models:/NAME/VERSION)"
        )
    return name, alias, version


def version_of(model_uri: str, tracking_uri: str | None) -> str:
    """The version `models:/NAME@ALIAS` names now (`models:/NAME/VERSION`: that version, checked to exist)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, alias, version = _name_and_pointer(model_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except MlflowException as e:
        raise ValueError(
            f"{model_uri}: not found in the registry at {tracking_uri or 'the default tracking URI'} "
            f"({e.error_code}); list the registered models in the MLflow UI, or set MLFLOW_TRACKING_URI"
        ) from None
    return str(found.version)


def download(model_uri: str, version: str, tracking_uri: str | None, dst: str) -> str:
    """The checkpoint folder of one registered version of `model_uri`'s name, downloaded into dst; its path."""
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    name = _name_and_pointer(model_uri)[0]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    source = client.get_model_version(name, version).source
    return mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=dst, tracking_uri=tracking_uri)


REGISTRY_PREFIX = "models:/"


def download_registered(uri: str, dst) -> Path:
    """models:/NAME@ALIAS (or models:/NAME/VERSION) -> the checkpoint folder, downloaded into dst from the
    registry at $MLFLOW_TRACKING_URI."""
    from landmix import checkpoint, tracking

    tracking_uri = tracking.resolve_uri()
    if tracking_uri is None:
        raise ValueError(
            f"{uri}: set MLFLOW_TRACKING_URI to the registry (http://host:5000 or sqlite:////abs/mlflow.db)"
        )
    folder = Path(download(uri, version_of(uri, tracking_uri), tracking_uri, str(dst)))
    checkpoint.read_meta(folder)  # a registered folder that is not a landmix checkpoint fails here
    return folder


def checkpoint_folder(source: str, dst) -> Path:
    """A checkpoint folder from a path or a models:/ URI (downloaded into dst); a clear error if neither
    (`landmix export --checkpoint`, `landmix train --init`)."""
    from landmix import checkpoint

    if source.startswith(REGISTRY_PREFIX):
        return download_registered(source, dst)
    checkpoint.read_meta(source)  # FileNotFoundError saying what a checkpoint folder is
    return Path(source)
