"""The local runtime: AWS emulated, the Chalice app served, event sources emulated.

``python -m infra.local`` (what ``make run`` runs) starts moto's server on loopback in a process
of its own (``infra.emulator``: emulated AWS never competes for the classifier's interpreter lock,
as real AWS never does), creates the resources, serves the routes on http://127.0.0.1:8000 and
polls the queues the app subscribes to, handing its handlers the event shapes Lambda would: batch
size, batching window, reserved concurrency and ``ReportBatchItemFailures`` all honoured. With
``AWS_ENDPOINT_URL`` (or ``LOCALSTACK_HOST``) set it starts no emulator and uses that endpoint
instead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.settings import LOCAL_API_KEY, Settings
from chalicelib.telemetry import REGISTRY, Registry
from infra.bootstrap import Resources, bootstrap
from infra.faults import SimulatedCrash

if TYPE_CHECKING:
    from chalice.app import Chalice
    from mypy_boto3_sqs import SQSClient

    from infra.worker import WorkerProcess

log = logging.getLogger("imgcls.local")

ROOT = Path(__file__).resolve().parent.parent
LOCAL_TENANT = "local"
STAGE = "dev"
# Functions that run in a process of their own, as on Lambda: the classifier, whose model and
# decoding should never wait for the interpreter lock the API's threads hold.
OWN_PROCESS = frozenset({"classify"})


class LambdaContext:
    """Enough of Lambda's context object for handlers and logging libraries."""

    def __init__(self, function_name: str, *, timeout_s: int, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:imgcls-{STAGE}-{function_name}"
        )
        self.log_group_name = f"/aws/lambda/imgcls-{STAGE}-{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (emulated) timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller hands a function, built from ReceiveMessage output."""
    records = []
    for m in messages:
        attributes = {k: str(v) for k, v in m.get("Attributes", {}).items()}
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in m.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


@dataclass
class PollerStats:
    """Counters a test or benchmark can read."""

    batches: int = 0
    messages: int = 0
    reported_failures: int = 0
    handler_errors: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    handler_seconds: float = 0.0  # time spent inside the handler, summed over batches
    last_batch_done: float = 0.0  # wall clock (time.time()) when the last batch was settled
    batch_done_cpu_s: list[float] = field(default_factory=list)  # process CPU at each settle


class SqsPoller(threading.Thread):
    """One concurrent execution of an SQS-triggered function, as Lambda's poller drives it.

    Gathers up to ``batch_size`` messages, waiting at most ``window_s`` after the first; invokes
    the handler; deletes the messages it did not report in ``batchItemFailures``. When the handler
    raises, or reports an id that is not in the batch, nothing is deleted and the whole batch
    comes back after the visibility timeout, as on Lambda.
    """

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: Any,
        function_name: str,
        batch_size: int,
        window_s: float,
        timeout_s: int,
        memory_mb: int,
        stop: threading.Event,
        build_event: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(name=f"sqs-{function_name}", daemon=True)
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._region = region
        self._handler = handler
        self._function = function_name
        self._batch_size = batch_size
        self._window_s = window_s
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._stop_event = stop
        self._build_event = build_event or functools.partial(
            sqs_event, queue_arn=queue_arn, region=region
        )
        self.stats = PollerStats()

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        resp = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=min(10, count),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))  # type: ignore[arg-type]

    def _gather(self) -> list[dict[str, Any]]:
        batch = self._receive(self._batch_size, wait_s=1)
        if not batch:
            return batch
        deadline = time.monotonic() + self._window_s
        while len(batch) < self._batch_size and not self._stop_event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(self._batch_size - len(batch), wait_s=0)
            if more:
                batch.extend(more)
            else:
                time.sleep(min(0.05, remaining))
        return batch

    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        event = self._build_event(batch)
        context = LambdaContext(
            self._function, timeout_s=self._timeout_s, memory_mb=self._memory_mb
        )
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.batch_sizes.append(len(batch))
        started = time.perf_counter()
        try:
            result = self._handler(event, context)
        except (Exception, SimulatedCrash):  # a crash kills this invocation, not the poller
            self.stats.handler_errors += 1
            log.exception("%s raised; the whole batch will be redelivered", self._function)
            return
        finally:
            self.stats.handler_seconds += time.perf_counter() - started
        failures = _reported_failures(result)
        ids = {m["MessageId"] for m in batch}
        if not failures <= ids:
            log.error(
                "%s reported ids not in the batch; the batch will be redelivered", self._function
            )
            return
        self.stats.reported_failures += len(failures)
        done = [m for m in batch if m["MessageId"] not in failures]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        self.stats.last_batch_done = time.time()
        self.stats.batch_done_cpu_s.append(time.process_time())

    def run(self) -> None:
        """Poll until stopped; no error ends the loop."""
        while not self._stop_event.is_set():
            try:
                batch = self._gather()
                if batch:
                    self._invoke(batch)
            except Exception:
                log.exception("poller for %s hit an error; continuing", self._function)
                self._stop_event.wait(1.0)


def _reported_failures(result: Any) -> set[str]:
    if not isinstance(result, dict):
        return set()
    items = result.get("batchItemFailures") or []
    return {str(item.get("itemIdentifier")) for item in items if isinstance(item, dict)}


def chalice_config() -> dict[str, Any]:
    """``.chalice/config.json``."""
    return json.loads((ROOT / ".chalice" / "config.json").read_text())  # type: ignore[no-any-return]


def function_setting(config: dict[str, Any], function: str, key: str, default: Any) -> Any:
    """A per-function setting, stage-level values overriding top-level ones, as Chalice does."""
    value = default
    for scope in (config, config.get("stages", {}).get(STAGE, {})):
        value = scope.get(key, value)
        value = scope.get("lambda_functions", {}).get(function, {}).get(key, value)
    return value


def config_environment(config: dict[str, Any]) -> dict[str, str]:
    """Environment variables config.json gives the functions (top level, then the stage)."""
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(STAGE, {}).get("environment_variables", {}))
    return env


def start_function_pollers(
    app: Chalice, config: dict[str, Any], source: Any, *, settings: Settings, stop: threading.Event
) -> list[SqsPoller]:
    """Start one function's pollers as Lambda's SQS poller would drive it: one per concurrent
    execution (its reserved concurrency), with its batch size, window, timeout and memory."""
    from chalicelib.aws import AwsClients

    sqs = AwsClients(settings).sqs
    name = source.name
    url = sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    concurrency = int(function_setting(config, name, "reserved_concurrency", 2) or 1)
    pollers = []
    for _ in range(max(1, concurrency)):
        poller = SqsPoller(
            sqs=sqs,
            queue_url=url,
            queue_arn=arn,
            region=settings.region,
            handler=app.handler_map[name],
            function_name=name,
            batch_size=source.batch_size,
            # LOCAL_BATCH_WINDOW_S: what the benchmark compares the deployed window with.
            window_s=float(
                os.environ.get("LOCAL_BATCH_WINDOW_S") or source.maximum_batching_window_in_seconds
            ),
            timeout_s=int(function_setting(config, name, "lambda_timeout", 60)),
            memory_mb=int(function_setting(config, name, "lambda_memory_size", 128)),
            stop=stop,
        )
        poller.start()
        pollers.append(poller)
    log.info(
        "%s: polling %s, batch %d, window %ss, concurrency %d%s",
        name,
        source.queue,
        source.batch_size,
        source.maximum_batching_window_in_seconds,
        concurrency,
        f", process {os.getpid()}",
    )
    return pollers


class LocalRuntime:
    """Everything ``make run`` starts, startable and stoppable from tests too."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        emulator_port: int = 4566,
        visibility_timeout_s: int = 5,
        poll: bool = True,
        emulator_in_process: bool = False,
        workers_in_processes: bool = True,
        data_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.emulator_in_process = emulator_in_process
        self.port = port
        self.emulator_port = emulator_port
        self.visibility_timeout_s = visibility_timeout_s
        self.poll = poll
        self.stop_event = threading.Event()  # pollers in use stop when it is set
        self.pollers: list[SqsPoller] = []
        self.workers: list[WorkerProcess] = []
        self.workers_in_processes = workers_in_processes
        self.data_dir = data_dir  # where S3 and DynamoDB are kept; None: memory only
        self.recovered: dict[str, int] = {}
        self.journaled = False  # S3 and DynamoDB kept in data_dir by the emulator started here
        self.resources: Resources | None = None
        self.seeded_keys: dict[str, str] = {}
        self._emulator = contextlib.ExitStack()  # stops the emulator this runtime started
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self._app: Chalice | None = None
        self._config: dict[str, Any] = {}

    def _prepare_environment(self, config: dict[str, Any]) -> None:
        for key, value in config_environment(config).items():
            os.environ.setdefault(key, str(value))
        os.environ.setdefault("API_KEYS", f"{LOCAL_TENANT}:{LOCAL_API_KEY}")
        # Webhooks to receivers on this machine, over plain http: what local development needs.
        os.environ.setdefault("WEBHOOK_ALLOW_HOSTS", "127.0.0.1,localhost")
        # EMF blobs are for CloudWatch; locally the same counters are at GET /metrics.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        if not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("LOCALSTACK_HOST"):
            from infra.emulator import emulator_process, emulator_server

            _ensure_free(self.emulator_port, "EMULATOR_PORT")
            if self.emulator_in_process:
                server = emulator_server(port=self.emulator_port)
                server.start()
                self._emulator.callback(server.stop)
                self.emulator_port = server.get_host_and_port()[1]
            else:
                journal = self.data_dir / "journal.jsonl" if self.data_dir else None
                self.journaled = journal is not None
                emulator = self._emulator.enter_context(
                    emulator_process(port=self.emulator_port, quiet=False, journal=journal)
                )
                self.emulator_port = int(emulator.endpoint.rsplit(":", 1)[1])
            os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{self.emulator_port}"
            # The emulator accepts any credentials; never let real ones near it.
            os.environ["AWS_ACCESS_KEY_ID"] = "testing"
            os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.pop("AWS_PROFILE", None)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    def start(self) -> None:
        """Emulator, resources, HTTP server, pollers; returns once everything listens.

        With ``poll=False`` the queues fill but nothing consumes them until ``start_pollers()``
        (a benchmark submits a backlog first, then times how fast the classifier drains it).
        """
        config = chalice_config()
        self._prepare_environment(config)
        settings = Settings.from_env()
        self.seeded_keys = dict(settings.api_keys)
        self.resources = bootstrap(settings, visibility_timeout_s=self.visibility_timeout_s)
        os.environ.update(self.resources.env())

        from chalicelib.wiring import build_services, set_services
        from infra.faults import with_faults

        app = _import_app()
        self._start_http(app, config)
        self._app, self._config = app, config
        # No webhook may reach this machine's own services: the API, or the emulator, whose
        # admin routes (/moto-api/reset) would wipe every tenant's data.
        os.environ["WEBHOOK_REFUSE_PORTS"] = ",".join(map(str, self._own_ports(settings)))
        # API_KEYS seeds the tenants table, hashed; the app then knows keys only from there, so
        # `python -m infra.keys revoke` works on them as on any other key.
        os.environ.pop("API_KEYS", None)
        settings = Settings.from_env()
        services = build_services(settings)
        services.keys.seed(self.seeded_keys)
        # The handlers run in this process: they use these services, faults and all.
        set_services(with_faults(services, settings))
        if self.journaled:
            from chalicelib.aws import AwsClients
            from infra.recovery import recover

            self.recovered = dict(recover(services, settings, AwsClients(settings)))
        if self.poll:
            self.start_pollers()

    def _own_ports(self, settings: Settings) -> list[int]:
        """The API's port and the port of every emulator endpoint on this machine."""
        from urllib.parse import urlsplit

        ports = {self.port}
        for service in ("s3", "sqs", "sns", "dynamodb"):
            endpoint = urlsplit(settings.endpoint_for(service) or "")
            if endpoint.hostname in ("127.0.0.1", "localhost", "::1") and endpoint.port:
                ports.add(endpoint.port)
        return sorted(ports)

    def start_pollers(self) -> None:
        """Start the SQS pollers (``start()`` does, unless ``poll=False``): the classifier in a
        process of its own, as Lambda runs each function, the light functions in this one."""
        from infra.worker import WorkerProcess

        if self._app is None or self.pollers or self.workers:
            raise RuntimeError("start_pollers() needs a started runtime without pollers")
        self.stop_event = threading.Event()
        settings = Settings.from_env()
        for source in self._app.event_sources:
            kind = type(source).__name__
            if kind != "SQSEventConfig":  # every handler of this app is SQS-driven
                log.warning("%s: %s events are not emulated locally", source.name, kind)
            elif source.name in OWN_PROCESS and self.workers_in_processes:
                self.workers.append(WorkerProcess(source.name))
            else:
                self.pollers += start_function_pollers(
                    self._app, self._config, source, settings=settings, stop=self.stop_event
                )

    def metrics(self) -> Registry:
        """The counters of every function: this process's and its workers'."""
        merged = Registry()
        merged.merge(REGISTRY.snapshot())
        for worker in self.workers:
            merged.merge(worker.snapshot()["registry"])
        return merged

    def poller_stats(self, function: str) -> list[PollerStats]:
        """The counters of a function's pollers, wherever they run."""
        found = [p.stats for p in self.pollers if p.name == f"sqs-{function}"]
        for worker in self.workers:
            if worker.function == function:
                found += [PollerStats(**stats) for stats in worker.snapshot()["pollers"]]
        return found

    def _start_http(self, app: Chalice, config: dict[str, Any]) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        _ensure_free(self.port, "PORT")
        chalice_cfg = Config.create(
            chalice_stage=STAGE,
            app_name=config["app_name"],
            config_from_disk=config,
            function_name="api_handler",
        )
        self._http = create_local_server(app, chalice_cfg, self.host, self.port)
        # Chalice's handler knows the methods API Gateway routes; answer any other (TRACE,
        # QUERY, …) with a JSON 405 as API Gateway refuses them, not http.server's HTML 501.
        self._http.server.RequestHandlerClass = functools.partial(
            _request_handler(_status_gateway(config), self.metrics),
            app_object=app,
            config=chalice_cfg,
        )
        self.port = self._http.server.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.server.serve_forever, name="http", daemon=True
        )
        self._http_thread.start()

    @property
    def url(self) -> str:
        """Where the API listens."""
        return f"http://{self.host}:{self.port}"

    def stop_pollers(self) -> None:
        """Stop the pollers after their current batch; ``start_pollers()`` starts new ones."""
        self.stop_event.set()
        for worker in self.workers:
            worker.stop()
        for poller in self.pollers:
            poller.join(timeout=30)
        self.pollers = []
        self.workers = []

    def stop(self) -> None:
        """Stop pollers, the HTTP server and the emulator, in that order."""
        self.stop_pollers()
        if self._http is not None:
            self._http.server.shutdown()
            self._http.server.server_close()
        self._emulator.close()


def _status_gateway(config: dict[str, Any]) -> Any:
    """The status function's own gateway: deployed, API Gateway sends ``GET /jobs/{job_id}``
    to a function of its own, and so does the local runtime."""
    from chalice.config import Config
    from chalice.local import LocalGateway

    from chalicelib.status_api import app as status_app

    status_cfg = Config.create(
        chalice_stage=STAGE,
        app_name=config["app_name"],
        config_from_disk=config,
        function_name="status",
    )
    return LocalGateway(status_app, status_cfg)


# Not /jobs/export: API Gateway matches a static path before a {job_id} beside it.
_STATUS_PATH = re.compile(r"^/jobs/(?!export(\?|$))[^/?]+(\?.*)?$")


def _request_handler(status_gateway: Any, metrics: Callable[[], Registry] | None = None) -> type:
    from chalice.local import ChaliceRequestHandler

    class RequestHandler(ChaliceRequestHandler):
        """Chalice's local handler, plus ``GET /metrics`` (Prometheus text: every handler runs in
        this process, so its counters are the whole service's) and a JSON 405 for methods no
        route can have."""

        # The headers and the body are two writes: on a connection kept open, Nagle's algorithm
        # held each body back until the client's delayed ACK, 40 ms later (GET /jobs/{id}: 56 ms
        # median before, 11-15 ms after).
        disable_nagle_algorithm = True

        def _method_not_allowed(self) -> None:
            # Read what the client sent, or its leftover bytes would start the next request on
            # this keep-alive connection; and close it anyway.
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.close_connection = True
            body = json.dumps(
                {
                    "error": {
                        "code": "method_not_allowed",
                        "message": f"{self.command} is not supported",
                    }
                }
            ).encode()
            self.send_response(405)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?", 1)[0] != "/metrics":
                self._generic_handle()  # the status route is chosen there
                return
            from infra.ops_metrics import queue_gauges

            registry = metrics() if metrics is not None else REGISTRY
            body = (registry.prometheus() + queue_gauges()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _generic_handle(self) -> None:
            # GET /jobs/{job_id} goes to the status function, as API Gateway sends it there.
            if self.command == "GET" and _STATUS_PATH.match(self.path):
                api_gateway = self.local_gateway
                self.local_gateway = status_gateway
                try:
                    super()._generic_handle()
                finally:
                    self.local_gateway = api_gateway
                return
            super()._generic_handle()

        def __getattr__(self, name: str) -> Any:
            # http.server looks up do_<METHOD>; any method Chalice has no handler for lands here.
            if name.startswith("do_"):
                return self._method_not_allowed
            raise AttributeError(name)

    return RequestHandler


def _ensure_free(port: int, setting: str) -> None:
    """Fail fast and clearly when a port is taken (moto's server would only log it)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(f"port {port} is in use; set {setting} to another port") from exc


def _import_app() -> Chalice:
    sys.path.insert(0, str(ROOT))
    import app as app_module

    return app_module.app


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="Run the image classifier locally.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--emulator-port", type=int, default=int(os.environ.get("EMULATOR_PORT", "4566"))
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=int(os.environ.get("LOCAL_VISIBILITY_TIMEOUT", "5")),
        help="seconds before a failed message is redelivered (short, so failures end quickly)",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("DATA_DIR", str(ROOT / ".data")),
        help="where jobs, images, keys and subscriptions are kept across restarts ('' keeps "
        "nothing)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runtime = LocalRuntime(
        host=args.host,
        port=args.port,
        emulator_port=args.emulator_port,
        visibility_timeout_s=args.visibility_timeout,
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None,
    )
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        runtime.start()
    except OSError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    # With LOCALSTACK_HOST alone there is no AWS_ENDPOINT_URL: ask localstack-client where it went.
    from localstack_client.config import get_service_endpoint

    print(f"AWS emulator: {get_service_endpoint('s3')}", flush=True)
    print(f"API and web page: {runtime.url}", flush=True)
    if runtime.journaled and runtime.data_dir is not None:
        print(
            f"state kept in {runtime.data_dir} (make clean-data, or DATA_DIR= another folder, "
            "starts empty)",
            flush=True,
        )
        if runtime.recovered:
            print(f"recovered after a restart: {runtime.recovered}", flush=True)
    if runtime.seeded_keys == {LOCAL_API_KEY: LOCAL_TENANT}:
        print(f"API key (tenant '{LOCAL_TENANT}'): {LOCAL_API_KEY}", flush=True)
    print(f"ready on {runtime.url}", flush=True)
    # Wait in short slices: when the kernel hands SIGINT to another thread, Python only runs
    # the handler once the main thread executes bytecode again, which an untimed wait never
    # does (Ctrl-C was then lost now and again).
    while not stop.wait(0.5):
        pass
    print("stopping...", flush=True)
    runtime.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
