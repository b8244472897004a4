"""`landmix serve`: the landmark detector as an HTTP endpoint, a Ray Serve application.

    landmix serve --model out/real/checkpoint                            # http://127.0.0.1:8000, loopback
    landmix serve --model models:/landmix-study.pretrain_finetune@best   # a registered model, by alias
    curl --data-binary @face.jpg http://127.0.0.1:8000/landmarks
    curl http://127.0.0.1:8000/healthz                                   # 200: model loaded and warmed up

On a cluster (`ray up cluster.yaml`), on the head node (~/landmix.env sets MLFLOW_TRACKING_URI and Ray's
token). cluster.yaml opens only SSH, so keep the default loopback bind and forward the port:
    ray exec cluster.yaml 'source ~/landmix.env && landmix serve --model models:/NAME@best --address auto \
        --detach'
    ray attach cluster.yaml -p 8000                                      # then curl as above, on localhost
Behind a load balancer or an opened port instead, bind every interface with a bearer token:
    export LANDMIX_SERVE_TOKEN=$(openssl rand -hex 32)
    RAY_ADDRESS=auto landmix serve --model models:/NAME@best --host 0.0.0.0 --port 8000
    curl -H "Authorization: Bearer $LANDMIX_SERVE_TOKEN" --data-binary @face.jpg http://HEAD:8000/landmarks

`POST /landmarks` (the image file's bytes as the body) answers {"faces": [{"box", "score", "crop", "points"}],
"width", "height", "model": {"uri", "version"}}: per face the detector box (x0, y0, x1, y1) and score and the
68 points, all in the photo's displayed 0-based pixels (EXIF orientation applied), and which model answered (a
checkpoint folder, or a registry name@alias and the version it pointed at). It runs `predict.Predictor`: the
detector, calibration, passes and flip averaging of `landmix predict`, one code path; `landmix.photos`
decodes.

- Batching: requests are batched (`@serve.batch`, --max-batch, --batch-wait-ms); a batch's faces go through
  the model together, in a thread, so the replica keeps answering /healthz while it computes.
- Back-pressure: a replica takes --max-ongoing requests at once, Serve queues --max-queued more and answers
  503 beyond; a request not answered within --timeout-s gets Serve's 408. torch uses --threads per replica.
- Bad requests: over --max-mb bytes or --max-megapixels (read from the header, before decoding) 413; not a
  JPEG/PNG/PPM/BMP 415; empty, truncated or corrupt 400; each with a message. The replica goes on serving.
- Bound to 127.0.0.1 unless --host says otherwise, and another host only with a bearer token in
  $LANDMIX_SERVE_TOKEN: requests without it get 401 (the replica holds only its SHA-256).
- Promotion: move the alias (`registry.register_model`, or the MLflow UI), then on a cluster run the same
  command again with --detach (it redeploys and returns), or give the serving command --poll-s N (it re-reads
  the alias every N s; the way on one machine, where the command owns a private Ray). Serve rolls the
  replicas over with a surge (max_surge_percent=100): each new replica loads and warms up the new version
  (in `reconfigure`, from the user_config naming it) while the old ones keep answering, and an old one stops
  only once its replacement is ready (tested under load: no failed request).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ray import serve

from landmix import photos, predict, registry

APP = "landmix"
TOKEN_ENV = "LANDMIX_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def model_config(model: str, tracking_uri: str | None = None) -> dict:
    """The deployment's user_config for --model: a checkpoint folder, or a registry URI with the version it
    names now (a new version: a redeploy rolls the replicas over to it, see the module docstring)."""
    if model.startswith("models:/"):
        return {
            "uri": model,
            "version": registry.version_of(model, tracking_uri),
            "tracking_uri": tracking_uri,
        }
    from landmix import checkpoint

    checkpoint.read_meta(model)  # a clear error here, not in a replica
    return {"uri": str(Path(model).resolve()), "version": None, "tracking_uri": None}


@serve.deployment(name="Landmarks")
class Landmarks:
    """Ingress and model in one replica: HTTP, the token, decoding, then the batched predictor."""

    def __init__(self, passes: int, threads: int, token_sha256: str | None, limits: tuple, batching: tuple):
        import torch

        torch.set_num_threads(threads)
        self.passes, self.token_sha256 = passes, token_sha256
        self.max_bytes, self.max_pixels = limits  # bytes, width x height
        self.landmarks.set_max_batch_size(batching[0])  # requests, seconds
        self.landmarks.set_batch_wait_timeout_s(batching[1])
        self.current = None  # (Predictor, {"uri", "version"}), swapped whole by reconfigure
        self.download = None  # the temporary folder a registry version was downloaded to

    def reconfigure(self, config: dict) -> None:
        """Load (and warm up) the model that config names, then switch to it in one assignment."""
        folder, dst = config["uri"], None
        if config["version"] is not None:
            dst = tempfile.mkdtemp(prefix="landmix-serve-")
            folder = registry.download(config["uri"], config["version"], config["tracking_uri"], dst)
        predictor = predict.Predictor.load(folder, passes=self.passes)
        warm = np.full((256, 256, 3), 128, np.uint8)
        predictor.faces(warm)  # the detector and torch's first run are slow: not on a user's request
        predict.landmarks_of(predictor.model, [(warm, (64.0, 64.0, 128.0))], self.passes)
        self.current = (predictor, {"uri": config["uri"], "version": config["version"]})
        if self.download:  # the old model is in memory; its files are no longer read
            shutil.rmtree(self.download, ignore_errors=True)
        self.download = dst

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def landmarks(self, images: list[np.ndarray]) -> list[dict]:
        predictor, model = self.current  # one model answers the whole batch, even during a switch
        found = await asyncio.to_thread(predictor.faces_of, images)
        return [{"faces": [predict.face_json(f) for f in faces], "model": model} for faces in found]

    def _authorized(self, request) -> bool:
        if self.token_sha256 is None:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), self.token_sha256)

    async def _body(self, request) -> bytes:
        declared = int(request.headers.get("content-length") or 0)
        if declared > self.max_bytes:  # refused before reading it
            raise photos.PhotoError(f"image: {declared} bytes, over the limit of {self.max_bytes}", 413)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > self.max_bytes:
                raise photos.PhotoError(f"image: over the limit of {self.max_bytes} bytes", 413)
        return bytes(data)

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        path = request.url.path.rstrip("/")
        if path == "/healthz":
            ready = self.current is not None
            replica = serve.get_replica_context().replica_id.unique_id
            body = {"ready": ready, "model": self.current[1] if ready else None, "replica": replica}
            return JSONResponse(body, status_code=200 if ready else 503)
        if path != "/landmarks":
            return JSONResponse({"error": f"no route {path}: POST /landmarks or GET /healthz"}, 404)
        if request.method != "POST":
            return JSONResponse({"error": "POST the image file's bytes to /landmarks"}, 405)
        if not self._authorized(request):
            return JSONResponse({"error": "missing or wrong token: send Authorization: Bearer TOKEN"}, 401)
        try:
            data = await self._body(request)
            image = await asyncio.to_thread(photos.decode, data, self.max_bytes, self.max_pixels)
        except photos.PhotoError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        answer = await self.landmarks(image)
        return JSONResponse(answer | {"width": image.shape[1], "height": image.shape[0]})


def application(config: dict, args) -> serve.Application:
    """The bound application of parsed flags (`add_arguments`) and a model_config."""
    token = os.environ.get(TOKEN_ENV) or None
    digest = hashlib.sha256(token.encode()).hexdigest() if token else None
    deployment = Landmarks.options(
        user_config=config,
        max_ongoing_requests=args.max_ongoing,
        max_queued_requests=args.max_queued,
        ray_actor_options={"num_cpus": args.threads},
        max_surge_percent=100,  # a redeploy starts the new replicas before the old ones stop
    )
    limits = (int(args.max_mb * 2**20), int(args.max_megapixels * 1e6))
    return deployment.bind(
        args.passes, args.threads, digest, limits, (args.max_batch, args.batch_wait_ms / 1000)
    )


def deploy(config: dict, args) -> None:
    """Start Serve on --host/--port (once per Ray cluster) and deploy or update the application."""
    serve.start(http_options={"host": args.host, "port": args.port, "request_timeout_s": args.timeout_s})
    serve.run(application(config, args), name=APP, route_prefix="/")


def check(args) -> None:
    """The user's mistakes, said before Ray starts."""
    if args.host not in LOOPBACK and not os.environ.get(TOKEN_ENV):
        raise ValueError(
            f"--host {args.host} serves other machines: set {TOKEN_ENV} to a secret token first "
            f"(clients send Authorization: Bearer TOKEN), or keep the default --host 127.0.0.1"
        )
    if args.detach and not (args.address or os.environ.get("RAY_ADDRESS")):
        raise ValueError(
            "--detach leaves the application on a Ray cluster: give --address auto (or RAY_ADDRESS)"
        )
    for flag in ("passes", "threads", "max_batch", "max_ongoing", "max_queued"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: give 1 or more")
    if args.max_ongoing < args.max_batch:
        raise ValueError(
            f"--max-ongoing {args.max_ongoing} under --max-batch {args.max_batch}: a batch never fills"
        )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model", required=True, help="checkpoint folder, or models:/NAME@ALIAS (MLflow registry)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help=f"bind address (another than loopback needs ${TOKEN_ENV})"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--passes", type=int, default=predict.DEFAULT_PASSES, help="as landmix predict --passes"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (and Ray CPUs) per replica")
    parser.add_argument("--max-batch", type=int, default=8, help="requests per model batch")
    parser.add_argument("--batch-wait-ms", type=float, default=10.0, help="wait for a batch to fill, at most")
    parser.add_argument("--max-ongoing", type=int, default=16, help="requests a replica takes at once")
    parser.add_argument("--max-queued", type=int, default=64, help="requests queued beyond those (then 503)")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="a request's limit (then 408)")
    parser.add_argument("--max-mb", type=float, default=photos.MAX_BYTES / 2**20, help="image bytes, MiB")
    parser.add_argument("--max-megapixels", type=float, default=photos.MAX_PIXELS / 1e6, help="image size")
    parser.add_argument("--poll-s", type=float, default=0, help="re-read the alias every N s (0: never)")
    parser.add_argument("--detach", action="store_true", help="deploy and return (a cluster's Ray keeps it)")
    parser.add_argument(
        "--address", default=None, help="Ray cluster to join (default $RAY_ADDRESS or a local one)"
    )


def run(args) -> int:
    from landmix import settings

    check(args)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or settings.default_tracking_uri()
    config = model_config(args.model, tracking_uri)
    settings.init_ray(args.address)
    deploy(config, args)
    where = f"http://{args.host}:{args.port}"
    which = f"version {config['version']}" if config["version"] else "checkpoint"
    print(f"serving {config['uri']} ({which}) at {where}/landmarks; Ctrl-C stops", flush=True)
    if args.detach:
        return 0  # the application stays on the cluster: `serve shutdown` (Ray's CLI) stops it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops it as Ctrl-C does
    try:
        while True:
            time.sleep(args.poll_s or 3600)
            if args.poll_s and config["version"] is not None:
                new = model_config(args.model, tracking_uri)
                if new != config:
                    print(f"{args.model}: version {config['version']} -> {new['version']}", flush=True)
                    config = new
                    deploy(config, args)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
    return 0
