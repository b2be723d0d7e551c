"""API keys and the API's input checks, without a broker (nothing here publishes)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import Services, create_app
from api.keys import KeyProblem, KeyStore
from api.open311 import BadInput, flatten_json, parse_xml_form
from api.view import View
from samt124.settings import Settings
from streams.pipeline import Pipeline


def test_a_key_is_shown_once_and_stored_only_as_its_hash(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "api-keys.json")
    entry, key = store.add("samt-org-tehran", "body", body="samt-org:IR-23")
    text = (tmp_path / "api-keys.json").read_text()
    assert key not in text
    prefix, key_id, secret = key.split("_", 2)  # the secret itself may hold "_"
    assert (prefix, key_id) == ("s124", entry.key_id)
    assert len(secret) == 43
    assert secret not in text
    assert stat.S_IMODE((tmp_path / "api-keys.json").stat().st_mode) == 0o600
    assert json.loads(text)["keys"][0]["digest"] == entry.digest
    caller = KeyStore(tmp_path / "api-keys.json").authenticate(key)
    assert caller is not None
    assert (caller.role, caller.body) == ("body", "samt-org:IR-23")
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("s124_nothing") is None
    assert [e.key_id for e in store.revoke("samt-org-tehran")] == [entry.key_id]
    assert store.authenticate(key) is None


@pytest.mark.parametrize(
    ("name", "role", "body", "channel", "problem"),
    [
        ("x", "admin", None, None, "role"),
        ("x", "body", None, None, "body"),
        ("x", "body", "samt-hq", None, "body"),
        ("x", "publisher", "samt-org:IR-23", None, "--body"),
        ("x", "publisher", None, "FAX", "channel"),
        ("bad name", "ministry", None, None, "name"),
    ],
)
def test_a_key_that_cannot_be_made_is_refused(
    tmp_path: Path, name: str, role: str, body: str | None, channel: str | None, problem: str
) -> None:
    with pytest.raises(KeyProblem, match=problem):
        KeyStore(tmp_path / "k.json").add(name, role, body=body, channel=channel)
    assert not (tmp_path / "k.json").exists()


def test_xml_with_a_dtd_is_refused_and_fields_are_read() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><request><d>&a;</d></request>'
    with pytest.raises(BadInput, match="DTD"):
        parse_xml_form(bomb)
    fields = parse_xml_form(
        b"<request><service_code>MKT-OVERCHARGE</service_code>"
        b"<attributes><province>IR-23</province></attributes></request>"
    )
    assert fields == {"service_code": "MKT-OVERCHARGE", "attribute[province]": "IR-23"}
    assert flatten_json({"service_code": "X", "attribute": {"province": "IR-01"}}) == {
        "service_code": "X",
        "attribute[province]": "IR-01",
    }
    with pytest.raises(BadInput, match="object"):
        flatten_json([1, 2])


@pytest.fixture
def client(tmp_path: Path) -> tuple[TestClient, str]:
    store = KeyStore(tmp_path / "keys.json")
    _, key = store.add("portal", "publisher")
    services = Services(store, View(Pipeline.load(Settings())), publisher=None)
    return TestClient(create_app(services)), key


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"service_code": ""}, "service_code"),
        ({"service_code": "NOPE"}, "service_code"),
        ({"attribute[province]": "IR-99"}, "attribute[province]"),
        ({"attribute[national_id]": "12"}, "attribute[national_id]"),
        ({"description": ""}, "description"),
        ({"attribute[priority]": "ASAP"}, "attribute[priority]"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_each_bad_field_is_a_400_that_names_it(
    client: tuple[TestClient, str], changes: dict[str, str], field: str
) -> None:
    http, key = client
    form = {
        "api_key": key,
        "service_code": "MKT-OVERCHARGE",
        "description": "d",
        "attribute[province]": "IR-23",
        "attribute[national_id]": "10101010101",
        **changes,
    }
    answer = http.post("/open311/v2/requests.json", data=form)
    assert answer.status_code == 400, answer.text
    assert answer.json()[0]["description"].startswith(field + ":")


def test_the_openapi_document_and_the_services_need_no_key(client: tuple[TestClient, str]) -> None:
    http, _ = client
    paths = http.get("/openapi.json").json()["paths"]
    # the busiest routes are served by plain routes, still described here
    assert set(paths["/open311/v2/requests.{fmt}"]) == {"get", "post"}
    assert set(paths["/open311/v2/requests/{request_id}.{fmt}"]) == {"get"}
    services = http.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} >= {"MKT-OVERCHARGE"}
    assert all(s["service_name_fa"] for s in services)
    assert http.get("/open311/v2/services/NOPE.json").status_code == 404
    assert http.get("/api/v1/queue").status_code == 401


def test_a_key_revoked_by_another_process_is_refused_once_the_file_is_looked_at_again(
    tmp_path: Path,
) -> None:
    serving = KeyStore(tmp_path / "keys.json", recheck=3600.0)
    _, key = KeyStore(tmp_path / "keys.json").add("portal", "publisher")
    assert serving.authenticate(key) is not None  # first look: the file is read
    KeyStore(tmp_path / "keys.json").revoke("portal")
    assert serving.authenticate(key) is not None  # not looked at again within `recheck`
    serving.recheck = 0.0
    assert serving.authenticate(key) is None


def test_a_key_added_by_another_process_works_at_once(tmp_path: Path) -> None:
    serving = KeyStore(tmp_path / "keys.json", recheck=3600.0)
    _, first = KeyStore(tmp_path / "keys.json").add("portal", "publisher")
    assert serving.authenticate(first) is not None
    _, second = KeyStore(tmp_path / "keys.json").add("app", "publisher")
    caller = serving.authenticate(second)
    assert caller is not None
    assert caller.name == "app"
