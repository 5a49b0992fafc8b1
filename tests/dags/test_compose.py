"""docker-compose.yml is valid, and the services the docs name are the services it defines."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.dags.conftest import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
VALIDATOR = PROJECT_DIR / "scripts" / "validate-compose.sh"
DOCKER_COMPOSE = PROJECT_DIR / ".tools" / "compose-venv" / "bin" / "docker-compose"
AIRFLOW_DOC = PROJECT_DIR / "docs" / "airflow.md"
DOCUMENTS = (PROJECT_DIR / "README.md", AIRFLOW_DOC)
# Commands in the docs that name a service: `docker compose exec SERVICE`, `--scale SERVICE=N`.
SERVICE_MENTION = re.compile(
    r"docker[ -]compose (?:exec|logs|restart|run|stop|start) (?:-\S+ )*([a-z][a-z0-9-]*)"
    r"|--scale ([a-z][a-z0-9-]*)="
)
TABLE_ROW = re.compile(r"^\| `([a-z][a-z0-9-]*)` \|", re.MULTILINE)


def compose_services() -> set[str]:
    return set(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"])


def services_table() -> set[str]:
    text = AIRFLOW_DOC.read_text(encoding="utf-8")
    section = text.split("### Services", 1)[1].split("\n#", 1)[0]
    return set(TABLE_ROW.findall(section))


def mentioned_services() -> set[str]:
    names = set()
    for document in DOCUMENTS:
        if document.is_file():
            for match in SERVICE_MENTION.finditer(document.read_text(encoding="utf-8")):
                names.add(match.group(1) or match.group(2))
    return names


def test_compose_validates() -> None:
    if not DOCKER_COMPOSE.is_file():
        pytest.skip(f"docker-compose 1.29 not installed at {DOCKER_COMPOSE}; run {VALIDATOR} once")
    completed = subprocess.run(
        ["bash", str(VALIDATOR)], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_services_table_matches_compose() -> None:
    assert services_table() == compose_services()


def test_mentioned_services_exist() -> None:
    mentioned = mentioned_services()
    assert mentioned, "the docs name no service in a docker compose command"
    assert mentioned <= compose_services()


def test_workers_scalable() -> None:
    worker = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_every_long_running_service_has_healthcheck() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    for name, service in services.items():
        if name != "airflow-init":
            assert "healthcheck" in service, name


def test_env_example_covers_compose_variables() -> None:
    # `$${NAME}` is a variable of the container shell, not of .env.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    documented = set(
        re.findall(r"^([A-Z0-9_]+)=", (PROJECT_DIR / ".env.example").read_text(), re.MULTILINE)
    )
    assert used <= documented
