"""The real Airflow components run an ingest DAG and the asset-triggered stages after it.

The test starts the api-server, scheduler, dag-processor and triggerer as separate processes on
127.0.0.1, with the LocalExecutor, parallelism 4 and a SQLite metadata database in a temporary
AIRFLOW_HOME. It imports the host pools and triggers one ingest DAG through the REST API. Then it
waits, bounded, until the processing and publishing runs that the asset events start have
succeeded. Every process it started is stopped by PID with SIGTERM, and killed if it has not exited
30 s later.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dags.conftest import DAGS_DIR, PROJECT_DIR, REPLAY_CATALOG, REPLAY_MANIFEST

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.usefixtures("require_airflow")]

SOURCE_ID = "example-fi-tax"
START_TIMEOUT_SECONDS = 120
RUN_TIMEOUT_SECONDS = 240
STOP_TIMEOUT_SECONDS = 30
AIRFLOW = Path(sys.executable).with_name("airflow")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def component_environment(home: Path, port: int) -> dict[str, str]:
    """Environment of every Airflow process: loopback only, small, and on the replay set."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "NOTICEBOARD_"))
    }
    environment.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "NOTICEBOARD_CATALOG_PATH": str(REPLAY_CATALOG),
            "NOTICEBOARD_REPLAY": str(REPLAY_MANIFEST),
            "NOTICEBOARD_DATABASE_URL": f"sqlite:///{home / 'noticeboard.db'}",
            "NOTICEBOARD_OUTPUT_DIR": str(home / "public"),
            "NOTICEBOARD_PUBLISHERS": "",
            "NOTICEBOARD_SECRET_KEY": "test-signing-key-for-scheduler-0123456789",
            "NOTICEBOARD_TRANSLATION_TARGETS": "",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return environment


def api(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """Call the Airflow REST API on loopback; return the status and the JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {"detail": error.read().decode(errors="replace")}


def wait_for(
    condition, timeout: float, what: str, processes: dict[str, subprocess.Popen]
) -> object:
    """Poll `condition` every second until it returns a true value; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"airflow {name} exited with {process.returncode}"
        try:
            value = condition()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """Send SIGTERM to each started process by PID, then kill any that outlive the timeout."""
    for process in processes.values():
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture
def airflow_components(tmp_path: Path) -> Iterator[tuple[int, Path, dict[str, subprocess.Popen]]]:
    """Start the four Airflow components on loopback; yield the port, home and processes."""
    if not REPLAY_MANIFEST.is_file():
        pytest.skip(f"example replay set not found at {REPLAY_MANIFEST}")
    port = free_port()
    environment = component_environment(tmp_path, port)
    logs = tmp_path / "component-logs"
    logs.mkdir()

    subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        env=environment,
        check=True,
        capture_output=True,
        timeout=300,
    )
    pools = tmp_path / "pools.json"
    subprocess.run(
        [sys.executable, str(PROJECT_DIR / "scripts" / "airflow_pools.py"), "--output", str(pools)],
        env=environment,
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [str(AIRFLOW), "pools", "import", str(pools)],
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )

    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, arguments in commands.items():
            with open(logs / f"{name}.log", "wb") as log:
                processes[name] = subprocess.Popen(
                    [str(AIRFLOW), *arguments],
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        yield port, tmp_path, processes
    finally:
        stop(processes)


def latest_run_state(port: int, dag_id: str) -> str | None:
    status, body = api(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1")
    runs = body.get("dag_runs", []) if status == 200 else []
    return runs[0]["state"] if runs else None


def test_trigger_runs_asset_chain(airflow_components: tuple) -> None:
    port, home, processes = airflow_components
    dag_id = f"noticeboard_ingest_{SOURCE_ID}"

    wait_for(
        lambda: api(port, "GET", f"/api/v2/dags/{dag_id}")[0] == 200,
        START_TIMEOUT_SECONDS,
        f"the api-server to list {dag_id}",
        processes,
    )
    status, body = api(port, "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    assert status == 200, body

    states = {}
    for stage in (dag_id, "noticeboard_process", "noticeboard_publish"):
        states[stage] = wait_for(
            lambda stage=stage: (
                latest_run_state(port, stage) in ("success", "failed")
                and latest_run_state(port, stage)
            ),
            RUN_TIMEOUT_SECONDS,
            f"a finished run of {stage}",
            processes,
        )

    assert states == {
        dag_id: "success",
        "noticeboard_process": "success",
        "noticeboard_publish": "success",
    }
    assert (home / "public" / "feed.json").is_file()
