"""docker-compose.yml's scale-out profile agrees with docs/deploy.md, nginx.conf and Settings."""

import re
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# A row of deploy.md's "Scale-out services" table: | `name` | image | role |
SERVICE_ROW = re.compile(r"^\|\s*`([a-z0-9-]+)`\s*\|", re.MULTILINE)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def scale_out_services() -> dict[str, Any]:
    return {n: s for n, s in compose()["services"].items() if "scale-out" in s.get("profiles", [])}


def documented_services() -> set[str]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### Scale-out services", 1)[1].split("\n#", 1)[0]
    return set(SERVICE_ROW.findall(section))


def test_compose_names_every_service_deploy_md_mentions() -> None:
    assert documented_services() - set(compose()["services"]) == set()


def test_deploy_md_documents_every_scale_out_service() -> None:
    assert documented_services() == set(scale_out_services())


def test_scale_out_profile_has_replicas_database_s3_and_a_load_balancer() -> None:
    services = scale_out_services()
    replicas = [n for n, s in services.items() if s.get("build") == "."]
    assert len(replicas) >= 2
    images = " ".join(str(s.get("image", "")) for s in services.values())
    assert "postgres" in images and "seaweedfs" in images and "nginx" in images


def test_replicas_use_only_real_settings_and_the_scale_out_backends() -> None:
    names = {f"FILEDOCK_{n.upper()}" for n in Settings.model_fields}
    for name, service in scale_out_services().items():
        if service.get("build") != ".":
            continue
        env = service["environment"]
        assert {k for k in env if k.startswith("FILEDOCK_")} - names == set(), name
        assert env["FILEDOCK_DATABASE_URL"].startswith("postgresql://")
        assert env["FILEDOCK_BLOB_URL"].startswith("s3://")
        Settings(
            **{k.removeprefix("FILEDOCK_").lower(): v for k, v in env.items() if k.startswith("FILEDOCK_")}
        )


def test_nginx_balances_over_every_replica() -> None:
    upstreams = set(re.findall(r"server\s+([a-z0-9-]+):8000", (ROOT / "deploy" / "nginx.conf").read_text()))
    assert upstreams == {n for n, s in scale_out_services().items() if s.get("build") == "."}


def test_mounted_config_files_exist() -> None:
    for service in scale_out_services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
