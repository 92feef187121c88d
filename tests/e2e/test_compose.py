"""SPEC 4.5: docker-compose.yml is checked statically (no Docker engine in CI).

It must hold the whole production layout, use only real settings, register every search
attribute the workflows set, pin its images and health-check its long-running services.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import ENV_PREFIX, Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CLI_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "TEXT": "Text", "INT": "Int",
             "DOUBLE": "Double", "BOOL": "Bool", "KEYWORD_LIST": "KeywordList"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _image_services(services: dict[str, Any], fragment: str) -> list[str]:
    return [name for name, s in services.items() if fragment in str(s.get("image", ""))]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_whole_layout_is_there(services: dict[str, Any]) -> None:
    assert _image_services(services, "temporalio/auto-setup") or _image_services(
        services, "temporalio/server"), "Temporal server"
    assert _image_services(services, "temporalio/ui"), "Temporal UI"
    assert _image_services(services, "axllent/mailpit"), "SMTP catcher"
    postgres = _image_services(services, "postgres:")
    assert len(postgres) >= 2, "one PostgreSQL for Temporal, one for Dunning"
    temporal_env = _env(services["temporal"])
    assert temporal_env["DB"].startswith("postgres"), "Temporal persists in PostgreSQL"
    assert temporal_env["POSTGRES_SEEDS"] in postgres
    for name, command in [("migrate", ["db", "migrate"]), ("worker", ["worker"]),
                          ("api", ["api"])]:
        assert name in services, name
        assert services[name].get("build") is not None, f"{name} is built from the Dockerfile"
        assert _command(services[name])[: len(command)] == command
    assert any("search-attribute" in name for name in services)


def test_workers_scale(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker, "a fixed name prevents replicas"
    assert "ports" not in worker, "published ports prevent replicas"


def test_every_dunning_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    # Everything but comments: variables set and variables interpolated.
    used = set(re.findall(r"\bDUNNING_[A-Z0-9_]+", yaml.safe_dump(compose)))
    assert used, "the app is configured through DUNNING_* variables"
    assert used <= fields, f"not settings: {sorted(used - fields)}"
    for required in ("DUNNING_DATABASE_URL", "DUNNING_TEMPORAL_ADDRESS", "DUNNING_SMTP_HOST",
                     "DUNNING_SMTP_PORT"):
        assert required in used


def test_app_services_share_one_configuration(services: dict[str, Any]) -> None:
    envs = [_env(services[name]) for name in ("migrate", "worker", "api")]
    assert envs[0] == envs[1] == envs[2]
    env = envs[0]
    assert env["DUNNING_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "@postgres:5432/" in env["DUNNING_DATABASE_URL"]
    assert "mailpit" in env["DUNNING_SMTP_HOST"]
    # Secrets are required from outside, never defaulted in the file.
    for secret in ("DUNNING_WEBHOOK_SECRETS", "DUNNING_API_TOKENS"):
        assert re.fullmatch(r"\$\{" + secret + r":\?[^}]+\}", env[secret]), secret


def test_api_port_matches_settings(services: dict[str, Any]) -> None:
    port = Settings.model_fields["api_port"].default
    assert port == 8000
    api = services["api"]
    command = _command(api)
    assert command[command.index("--port") + 1] == str(port)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert f"{port}:{port}" in [str(p) for p in api["ports"]]
    assert _env(api)["DUNNING_API_PORT"] == str(port)


def test_ui_is_on_8233(services: dict[str, Any]) -> None:
    ui = next(s for s in services.values() if "temporalio/ui" in str(s.get("image")))
    assert "8233:8080" in [str(p) for p in ui["ports"]]


def test_all_search_attributes_are_registered(services: dict[str, Any]) -> None:
    name = next(n for n in services if "search-attribute" in n)
    service = services[name]
    registered = dict(pair.split("=", 1) for pair in _env(service)["SEARCH_ATTRIBUTES"].split())
    expected = {k.name: CLI_TYPES[k.indexed_value_type.name] for k in SEARCH_ATTRIBUTES}
    assert registered == expected
    assert {"CustomerId", "CustomerClass", "InvoiceNumber", "CollectionStatus",
            "ServiceState", "DueDate", "OnHold"} <= set(registered)
    # The script it runs exists, is idempotent, and apps wait for it.
    script = ROOT / "deploy" / "register-search-attributes.sh"
    assert any(str(v).startswith("./deploy/register-search-attributes.sh")
               for v in service["volumes"])
    text = script.read_text()
    assert "search-attribute create" in text and "already registered" in text
    assert service["depends_on"]["temporal"]["condition"] == "service_healthy"
    for app in ("worker", "api"):
        assert services[app]["depends_on"][name]["condition"] == "service_completed_successfully"


def test_start_order(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for app in ("worker", "api"):
        deps = services[app]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks(services: dict[str, Any]) -> None:
    one_shots = {"migrate"} | {n for n in services if "search-attribute" in n}
    for name, service in services.items():
        if name in one_shots:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None or service.get("build") is not None:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image} has no version in its tag"
    base = re.search(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base and base.group(1).startswith("python:3.11") and "latest" not in base.group(1)


def test_dockerfile_installs_with_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -c constraints.txt ." in dockerfile
    assert re.search(r"^USER\s+(?!root)\S+", dockerfile, re.M), "not root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored


def test_dynamic_config_is_mounted(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    path = _env(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    mount = next(v for v in temporal["volumes"] if "dynamicconfig" in v)
    host_dir = ROOT / mount.split(":")[0]
    assert (host_dir / Path(path).name).is_file()
    yaml.safe_load((host_dir / Path(path).name).read_text())


def test_prometheus_scrapes_the_api_and_every_worker(services: dict[str, Any]) -> None:
    prometheus = next(s for s in services.values()
                      if "prom/prometheus" in str(s.get("image")))
    mount = next(v for v in prometheus["volumes"] if str(v).endswith(":ro"))
    host_path, container_path = str(mount).split(":")[:2]
    assert f"--config.file={container_path}" in prometheus["command"]
    config = yaml.safe_load((ROOT / host_path).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())

    # The API: its service name and the port it listens on.
    api_port = _command(services["api"])[_command(services["api"]).index("--port") + 1]
    static = [t for job in jobs.values() for c in job.get("static_configs", [])
              for t in c["targets"]]
    assert f"api:{api_port}" in static

    # Every worker replica: DNS discovery of the service on the port it is told to serve.
    worker = services["worker"]
    command = _command(worker)
    worker_port = int(command[command.index("--metrics-port") + 1])
    discovered = [c for job in jobs.values() for c in job.get("dns_sd_configs", [])]
    assert any("worker" in c["names"] and c["port"] == worker_port for c in discovered)
    # Reachable from the Prometheus container, not only from the worker's loopback.
    assert _env(worker)["DUNNING_WORKER_METRICS_HOST"] == "0.0.0.0"
