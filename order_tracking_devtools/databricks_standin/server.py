"""A local stand-in for the Databricks REST API, faithful enough that the unmodified
dagster-databricks launcher (through databricks-sdk) cannot tell it from a workspace.

Endpoints (the paths databricks-sdk 0.60 calls):
  DBFS  POST /api/2.0/dbfs/create | add-block | close, GET /api/2.0/dbfs/read | get-status
  Jobs  POST /api/2.2/jobs/runs/submit | cancel, GET /api/2.2/jobs/runs/get | get-output
Anything else answers 404 ENDPOINT_NOT_FOUND, as a workspace does; a wrong or missing bearer
token answers 401.

DBFS lives in a folder. A submitted `spark_python_task` runs in a subprocess (driver.py) with
local Spark + Delta: `dbfs:/…` and `/dbfs/…` paths are mapped into that folder, the globals
`spark`, `sc` and `dbutils` are provided, and the environment is the cluster's (the stand-in's
`cluster_env`, the cluster spec's `spark_env_vars`, DATABRICKS_RUNTIME_VERSION), not the
caller's. Runs go PENDING -> RUNNING -> TERMINATING -> TERMINATED with result SUCCESS, FAILED,
TIMEDOUT or CANCELED; a library the run asks for that is not installed at that version fails the
run with INTERNAL_ERROR, as a failed library install does.
"""

import base64
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from order_tracking.engine import codegen_config, local_spark_config, with_cached_delta_jars

DRIVER = Path(__file__).with_name("driver.py")
MAX_BLOCK = 1024 * 1024  # DBFS add-block and read limit: 1 MB
DEFAULT_READ = 512 * 1024
SPARK_VERSION = re.compile(r"^(\d+)\.(\d+)\.x-(?:[a-z-]+-)?scala2\.\d+$")
# The host process's own environment is not the cluster's; only these pass through.
SYSTEM_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "JAVA_HOME", "TMPDIR", "USER")


class ApiError(Exception):
    STATUS = {
        "INVALID_PARAMETER_VALUE": 400,
        "RESOURCE_ALREADY_EXISTS": 400,
        "MAX_BLOCK_SIZE_EXCEEDED": 400,
        "MAX_READ_SIZE_EXCEEDED": 400,
        "UNAUTHENTICATED": 401,
        "RESOURCE_DOES_NOT_EXIST": 404,
        "ENDPOINT_NOT_FOUND": 404,
    }

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code, self.message = error_code, message
        self.status = self.STATUS[error_code]


@dataclass
class Run:
    run_id: int
    job_id: int
    run_name: str | None
    task: dict[str, Any]
    timeout_seconds: int
    submitted: dict[str, Any]
    folder: Path
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = "Waiting for cluster"
    start_time: int = field(default_factory=lambda: int(time.time() * 1000))
    end_time: int = 0
    cancel_requested: bool = False
    process: subprocess.Popen | None = None
    exit_code: int | None = None


class DatabricksStandIn:
    def __init__(
        self,
        root: Path,
        token: str,
        secret_scopes: dict[str, dict[str, str]] | None = None,
        cluster_env: dict[str, str] | None = None,
        all_purpose_clusters: tuple[str, ...] = (),
        pending_seconds: float = 0.5,
    ):
        self.root = Path(root)
        self.dbfs_root = self.root / "dbfs"
        self.token = token
        self.secret_scopes = secret_scopes or {}
        self.cluster_env = cluster_env or {}
        self.pending_seconds = pending_seconds
        self.all_purpose_clusters = set(all_purpose_clusters)
        self._clusters: dict[str, tuple[subprocess.Popen, dict]] = {}
        self._cluster_lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self.runs: dict[int, Run] = {}
        self._lock = threading.Lock()
        self._handles: dict[int, tuple[Path, Path]] = {}
        self._ids = itertools.count(1001)
        self._idempotency: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> "DatabricksStandIn":
        self.dbfs_root.mkdir(parents=True, exist_ok=True)
        secrets_file = self.root / "secret_scopes.json"
        secrets_file.write_text(json.dumps(self.secret_scopes))
        secrets_file.chmod(0o600)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                standin._serve(self, "GET")

            def do_POST(self):  # noqa: N802
                standin._serve(self, "POST")

            def log_message(self, *args):  # calls are recorded in `calls`, not printed
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        for run in list(self.runs.values()):
            if run.life_cycle_state in ("PENDING", "RUNNING"):
                self._cancel(run)
        for run in list(self.runs.values()):
            if run.process is not None:
                run.process.wait(timeout=60)
        for host, _ in self._clusters.values():
            host.stdin.close()  # the cluster's driver stops when its stdin closes
            try:
                host.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(host.pid, signal.SIGKILL)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "DatabricksStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection for tests --------------------------------------------------------------------
    def wait_for_run(self, state: str, timeout: float = 120) -> Run:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in list(self.runs.values()):
                if run.life_cycle_state == state:
                    return run
            time.sleep(0.1)
        raise TimeoutError(f"no run reached {state} in {timeout}s")

    def secret_reads(self, run: Run) -> list[dict[str, str]]:
        log = run.folder / "secret_access.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def driver_log(self, run: Run) -> str:
        return (run.folder / "driver.log").read_text(errors="replace")

    # -- HTTP ------------------------------------------------------------------------------------
    ROUTES = {
        ("POST", "/api/2.0/dbfs/create"): "_dbfs_create",
        ("POST", "/api/2.0/dbfs/add-block"): "_dbfs_add_block",
        ("POST", "/api/2.0/dbfs/close"): "_dbfs_close",
        ("GET", "/api/2.0/dbfs/read"): "_dbfs_read",
        ("GET", "/api/2.0/dbfs/get-status"): "_dbfs_get_status",
        ("POST", "/api/2.2/jobs/runs/submit"): "_runs_submit",
        ("GET", "/api/2.2/jobs/runs/get"): "_runs_get",
        ("GET", "/api/2.2/jobs/runs/get-output"): "_runs_get_output",
        ("POST", "/api/2.2/jobs/runs/cancel"): "_runs_cancel",
    }

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError("UNAUTHENTICATED", "Invalid access token.")
            route = self.ROUTES.get((method, url.path))
            if route is None:
                raise ApiError("ENDPOINT_NOT_FOUND", f"No API found for '{method} {url.path}'")
            args = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if raw:
                args |= json.loads(raw)
            status, body = 200, getattr(self, route)(args)
        except ApiError as error:
            status = error.status
            body = {"error_code": error.error_code, "message": error.message}
        payload = json.dumps(body).encode()
        with self._lock:
            self.calls.append((method, url.path, status))
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    # -- DBFS ------------------------------------------------------------------------------------
    def local_path(self, dbfs_path: str) -> Path:
        """`dbfs:/x`, `dbfs:///x`, `/dbfs/x` and the API's `/x` all name <dbfs_root>/x."""
        for prefix in ("dbfs:", "/dbfs/"):
            if dbfs_path.startswith(prefix):
                dbfs_path = "/" + dbfs_path[len(prefix) :]
                break
        if not dbfs_path.startswith("/"):
            raise ApiError("INVALID_PARAMETER_VALUE", f"Path must be absolute: {dbfs_path}")
        path = (self.dbfs_root / dbfs_path.lstrip("/")).resolve()
        if not path.is_relative_to(self.dbfs_root.resolve()):
            raise ApiError("INVALID_PARAMETER_VALUE", f"Invalid path: {dbfs_path}")
        return path

    def _dbfs_create(self, args: dict) -> dict:
        path = self.local_path(args["path"])
        if path.is_dir():
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"A directory exists at {args['path']}")
        if path.exists() and not args.get("overwrite"):
            raise ApiError(
                "RESOURCE_ALREADY_EXISTS",
                f"A file or directory already exists at the input path {args['path']}.",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = next(self._ids)
        partial = path.with_name(f".{path.name}.{handle}.partial")
        partial.write_bytes(b"")
        with self._lock:
            self._handles[handle] = (partial, path)
        return {"handle": handle}

    def _handle(self, args: dict) -> tuple[Path, Path]:
        handle = self._handles.get(int(args["handle"]))
        if handle is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Handle {args['handle']} does not exist.")
        return handle

    def _dbfs_add_block(self, args: dict) -> dict:
        partial, _ = self._handle(args)
        data = base64.b64decode(args["data"])
        if len(data) > MAX_BLOCK:
            raise ApiError("MAX_BLOCK_SIZE_EXCEEDED", "The block of data exceeds 1 MB.")
        with partial.open("ab") as out:
            out.write(data)
        return {}

    def _dbfs_close(self, args: dict) -> dict:
        partial, path = self._handle(args)
        partial.replace(path)
        with self._lock:
            del self._handles[int(args["handle"])]
        return {}

    def _dbfs_read(self, args: dict) -> dict:
        path = self.local_path(args["path"])
        offset, length = int(args.get("offset", 0)), int(args.get("length", DEFAULT_READ))
        if not path.exists():
            raise ApiError(
                "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {args['path']}."
            )
        if path.is_dir() or offset < 0 or length < 0:
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"Cannot read {args['path']} at {offset}+{length}."
            )
        if length > MAX_BLOCK:
            raise ApiError("MAX_READ_SIZE_EXCEEDED", "Read length exceeds 1 MB.")
        with path.open("rb") as source:
            source.seek(offset)
            data = source.read(length)
        return {"bytes_read": len(data), "data": base64.b64encode(data).decode()}

    def _dbfs_get_status(self, args: dict) -> dict:
        path = self.local_path(args["path"])
        if not path.exists():
            raise ApiError(
                "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {args['path']}."
            )
        stat = path.stat()
        return {
            "path": args["path"],
            "is_dir": path.is_dir(),
            "file_size": 0 if path.is_dir() else stat.st_size,
            "modification_time": int(stat.st_mtime * 1000),
        }

    # -- Jobs ------------------------------------------------------------------------------------
    def _runs_submit(self, args: dict) -> dict:
        token = args.get("idempotency_token")
        with self._lock:
            if token and token in self._idempotency:
                return {"run_id": self._idempotency[token]}
        tasks = args.get("tasks") or []
        if len(tasks) != 1:
            raise ApiError("INVALID_PARAMETER_VALUE", "The stand-in runs exactly one task per run.")
        task = tasks[0]
        kinds = [
            k
            for k in (
                "spark_python_task",
                "notebook_task",
                "spark_jar_task",
                "spark_submit_task",
                "python_wheel_task",
            )
            if k in task
        ]
        if kinds != ["spark_python_task"]:
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"Only spark_python_task is emulated, got {kinds}."
            )
        self._validate_cluster(task)
        python_file = task["spark_python_task"].get("python_file", "")
        if not python_file.startswith("dbfs:") or not self.local_path(python_file).is_file():
            raise ApiError(
                "INVALID_PARAMETER_VALUE", f"Python file {python_file!r} does not exist in DBFS."
            )
        run_id = next(self._ids)
        run = Run(
            run_id=run_id,
            job_id=next(self._ids),
            run_name=args.get("run_name"),
            task=task,
            timeout_seconds=int(args.get("timeout_seconds") or 0),
            submitted=args,
            folder=self.root / "runs" / str(run_id),
        )
        run.folder.mkdir(parents=True)
        with self._lock:
            self.runs[run_id] = run
            if token:
                self._idempotency[token] = run_id
        threading.Thread(target=self._execute, args=(run,), daemon=True).start()
        return {"run_id": run_id}

    def _validate_cluster(self, task: dict) -> None:
        if "existing_cluster_id" in task:
            if task["existing_cluster_id"] not in self.all_purpose_clusters:
                raise ApiError(
                    "INVALID_PARAMETER_VALUE",
                    f"Cluster {task['existing_cluster_id']} does not exist",
                )
            return
        cluster = task.get("new_cluster")
        if not cluster:
            raise ApiError(
                "INVALID_PARAMETER_VALUE", "One of new_cluster or existing_cluster_id is required."
            )
        if not SPARK_VERSION.match(cluster.get("spark_version", "")):
            raise ApiError(
                "INVALID_PARAMETER_VALUE",
                f"Invalid spark version {cluster.get('spark_version')!r}.",
            )
        if not (cluster.get("node_type_id") or cluster.get("instance_pool_id")):
            raise ApiError(
                "INVALID_PARAMETER_VALUE", "node_type_id or instance_pool_id is required."
            )
        if "num_workers" not in cluster and "autoscale" not in cluster:
            raise ApiError("INVALID_PARAMETER_VALUE", "num_workers or autoscale is required.")

    def _runs_get(self, args: dict) -> dict:
        run = self._run(args)
        state = {"life_cycle_state": run.life_cycle_state, "state_message": run.state_message}
        if run.result_state:
            state["result_state"] = run.result_state
            state["user_cancelled_or_timedout"] = run.result_state in ("CANCELED", "TIMEDOUT")
        task = {
            "run_id": run.run_id + 500000,
            "task_key": run.task.get("task_key"),
            "state": state,
            "spark_python_task": run.task["spark_python_task"],
            "libraries": run.task.get("libraries", []),
            "start_time": run.start_time,
            "end_time": run.end_time,
            "attempt_number": 0,
        }
        for key in ("new_cluster", "existing_cluster_id"):
            if key in run.task:
                task[key] = run.task[key]
        if run.life_cycle_state != "PENDING":
            cluster_id = run.task.get("existing_cluster_id") or f"standin-{run.run_id}"
            task["cluster_instance"] = {
                "cluster_id": cluster_id,
                "spark_context_id": str(run.run_id),
            }
        return {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "run_name": run.run_name,
            "run_type": "SUBMIT_RUN",
            "format": "MULTI_TASK",
            "creator_user_name": "standin@example.com",
            "state": state,
            "tasks": [task],
            "start_time": run.start_time,
            "end_time": run.end_time,
            "run_page_url": f"{self.url}/?o=0#job/{run.job_id}/run/{run.run_id}",
        }

    def _runs_get_output(self, args: dict) -> dict:
        run = self._run(args)
        output: dict[str, Any] = {"metadata": self._runs_get(args)}
        if run.result_state == "FAILED":
            log = self.driver_log(run)
            output["error"] = log.strip().splitlines()[-1] if log.strip() else run.state_message
            output["error_trace"] = log[-20000:]
        return output

    def _runs_cancel(self, args: dict) -> dict:
        self._cancel(self._run(args))
        return {}

    def _run(self, args: dict) -> Run:
        run = self.runs.get(int(args.get("run_id", -1)))
        if run is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Run {args.get('run_id')} does not exist.")
        return run

    def _cancel(self, run: Run) -> None:
        with self._lock:
            if run.life_cycle_state in ("TERMINATING", "TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                return
            run.cancel_requested = True
            if run.process is not None and run.process.poll() is None:
                os.killpg(run.process.pid, signal.SIGTERM)

    # -- execution -------------------------------------------------------------------------------
    def _finish(self, run: Run, life_cycle: str, result: str | None, message: str) -> None:
        # As on Databricks, the result is known while the cluster is still terminating.
        with self._lock:
            run.life_cycle_state, run.result_state, run.state_message = (
                "TERMINATING",
                result,
                message,
            )
            run.end_time = int(time.time() * 1000)
        time.sleep(0.2)
        with self._lock:
            run.life_cycle_state = life_cycle

    def _missing_libraries(self, run: Run) -> list[str]:
        missing = []
        for library in run.task.get("libraries", []):
            spec = library.get("pypi", {}).get("package")
            if not spec:
                missing.append(json.dumps(library))
                continue
            name, _, pinned = spec.partition("==")
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed = None
            if installed is None or (pinned and installed != pinned):
                missing.append(f"{spec} (available: {installed})")
        return missing

    def _execute(self, run: Run) -> None:
        try:
            self._run_task(run)
        except Exception as error:  # the stand-in's own failure: the run must still end
            self._finish(run, "INTERNAL_ERROR", "FAILED", f"Stand-in error: {error!r}")
            raise

    def _run_task(self, run: Run) -> None:
        time.sleep(self.pending_seconds)  # cluster start
        gateway = None
        if "existing_cluster_id" in run.task:
            gateway = self._cluster_gateway(run.task["existing_cluster_id"])
        if run.cancel_requested:
            return self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.")
        missing = self._missing_libraries(run)
        if missing:
            return self._finish(
                run, "INTERNAL_ERROR", "FAILED", f"Library installation failed: {missing}"
            )

        task = run.task["spark_python_task"]
        cluster = run.task.get("new_cluster", {})
        version = SPARK_VERSION.match(cluster.get("spark_version", "17.3.x-scala2.13"))
        spec = {
            "python_file": str(self.local_path(task["python_file"])),
            "parameters": [self._map_parameter(p) for p in task.get("parameters", [])],
            "spark_conf": self._spark_conf(run.folder, f"standin-run-{run.run_id}")
            | cluster.get("spark_conf", {}),
            "secrets_file": str(self.root / "secret_scopes.json"),
            "secret_access_log": str(run.folder / "secret_access.jsonl"),
            "gateway": gateway,
        }
        (run.folder / "spec.json").write_text(json.dumps(spec))
        runtime = f"{version.group(1)}.{version.group(2)}" if version else "17.3"
        env = self._environment(runtime) | cluster.get("spark_env_vars", {})
        with self._lock:
            if run.cancel_requested:
                return self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.")
            with (run.folder / "driver.log").open("wb") as log:
                run.process = subprocess.Popen(
                    [sys.executable, str(DRIVER), "task", str(run.folder / "spec.json")],
                    cwd=run.folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # cancel stops the whole process group
                )
            run.life_cycle_state, run.state_message = "RUNNING", "In run"
        try:
            run.exit_code = run.process.wait(timeout=run.timeout_seconds or None)
        except subprocess.TimeoutExpired:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()
            return self._finish(
                run, "TERMINATED", "TIMEDOUT", f"Run timed out after {run.timeout_seconds}s."
            )
        if run.cancel_requested:
            return self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.")
        if run.exit_code == 0:
            return self._finish(run, "TERMINATED", "SUCCESS", "")
        return self._finish(
            run, "TERMINATED", "FAILED", "Workload failed, see run output for details"
        )

    def _environment(self, runtime: str = "17.3") -> dict[str, str]:
        env = {k: os.environ[k] for k in SYSTEM_ENV if k in os.environ}
        return (
            env
            | self.cluster_env
            | {
                "DATABRICKS_RUNTIME_VERSION": runtime,
                "PYTHONUNBUFFERED": "1",
            }
        )

    def _cluster_gateway(self, cluster_id: str) -> dict:
        """Start the all-purpose cluster's driver on first use (a stopped cluster starting)."""
        with self._cluster_lock:
            if cluster_id in self._clusters:
                return self._clusters[cluster_id][1]
            folder = self.root / "clusters" / cluster_id
            folder.mkdir(parents=True, exist_ok=True)
            gateway_file = folder / "gateway.json"
            spec = {
                "spark_conf": self._spark_conf(folder, f"standin-cluster-{cluster_id}"),
                "gateway_file": str(gateway_file),
            }
            (folder / "spec.json").write_text(json.dumps(spec))
            with (folder / "driver.log").open("wb") as log:
                host = subprocess.Popen(
                    [sys.executable, str(DRIVER), "cluster", str(folder / "spec.json")],
                    cwd=folder,
                    env=self._environment(),
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 300
            while not gateway_file.exists():
                if host.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"cluster {cluster_id} did not start: see {folder}/driver.log"
                    )
                time.sleep(0.2)
            gateway = json.loads(gateway_file.read_text())
            self._clusters[cluster_id] = (host, gateway)
            return gateway

    def _map_parameter(self, parameter: str) -> str:
        if parameter.startswith(("dbfs:", "/dbfs/")):
            return str(self.local_path(parameter))
        return parameter

    @staticmethod
    def _spark_conf(folder: Path, name: str) -> dict[str, str]:
        """The runtime's own Spark: local, with Delta in its image (the cached jars, when there);
        scratch under the cluster's folder."""
        return with_cached_delta_jars(
            local_spark_config()
            | {
                "spark.app.name": name,
                "spark.sql.warehouse.dir": str(folder / "warehouse"),
                # A stand-in cluster's driver lives for a run or a test module: the quick JIT
                # alone (C1) costs less CPU than the optimizing one gives back in that time
                # (three sample days on job clusters: 106 s instead of 118 s).
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder} -XX:TieredStopAtLevel=1",
                "spark.driver.memory": "2g",
            }
            # Interpreted, as the local engine runs: a short-lived driver spends more compiling
            # generated code than it gets back (the sample days, insights and compaction through
            # the stand-in: 254 s against 269-274 s compiled, two pairs in turn). Results are the
            # same either way (Spark's own tests run every expression both ways); a real cluster
            # compiles.
            | codegen_config("off")
        )
