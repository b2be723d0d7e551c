"""Where analytics live: the ClickHouse URL, plain, TLS and embedded."""

from __future__ import annotations

from pathlib import Path

import pytest

from samt124.settings import Settings, parse_clickhouse_url


def test_a_plain_server_url_names_host_port_user_and_database() -> None:
    target = parse_clickhouse_url("clickhouse://writer:p%40ss@ch.example:9001/analytics")
    assert (target.engine, target.host, target.port, target.database) == (
        "server",
        "ch.example",
        9001,
        "analytics",
    )
    assert (target.user, target.password.get_secret_value()) == ("writer", "p@ss")
    assert target.tls_options() == {}


def test_tls_defaults_to_port_9440_and_verifies_against_the_system_authorities() -> None:
    target = parse_clickhouse_url("clickhouses://analyst@ch.example/samt124")
    assert (target.port, target.secure) == (9440, True)
    assert target.tls_options() == {"secure": True, "verify": True}
    assert target.describe() == "clickhouses://analyst@ch.example:9440/samt124"


def test_tls_options_come_from_the_query() -> None:
    target = parse_clickhouse_url(
        "clickhouses://u:p@ch:9440/db?ca_certs=/etc/ca.pem&certfile=/c.pem&keyfile=/k.pem"
    )
    assert target.tls_options() == {
        "secure": True,
        "verify": True,
        "ca_certs": "/etc/ca.pem",
        "certfile": "/c.pem",
        "keyfile": "/k.pem",
    }
    assert parse_clickhouse_url("clickhouses://ch/db?verify=false").tls_options() == {
        "secure": True,
        "verify": False,
    }


def test_an_insert_quorum_counts_the_replicas_of_a_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "clickhouse://u:secret@ch-1:9000,ch-2:9000/db"
    assert Settings(clickhouse_url=url, clickhouse_cluster="samt124").clickhouse.insert_quorum == 0
    monkeypatch.setenv("SAMT124_CLICKHOUSE_INSERT_QUORUM", "2")
    assert Settings(clickhouse_url=url, clickhouse_cluster="samt124").clickhouse.insert_quorum == 2
    with pytest.raises(ValueError, match="INSERT_QUORUM counts the replicas of a ClickHouse"):
        Settings(clickhouse_url="clickhouse://ch-1:9000/db").clickhouse  # noqa: B018


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://ch:8123/db", "must start with clickhouse://, clickhouses:// \\(TLS\\) or chdb://"),
        ("clickhouses://ch/db?ca=/x.pem", "unknown option\\(s\\) in the ClickHouse URL: ca"),
        ("clickhouse://ch/db?ca_certs=/x.pem", "ca_certs in the ClickHouse URL need TLS"),
        ("clickhouses://ch/db?verify=maybe", "verify in the ClickHouse URL is true or false"),
    ],
)
def test_a_url_samt124_cannot_use_is_refused_saying_why(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_clickhouse_url(url)


def test_replicas_of_a_cluster_are_named_with_commas_the_first_first() -> None:
    target = parse_clickhouse_url(
        "clickhouse://writer:s%3Acret@ch-1:9001,ch-2,[fd00::3]:9003/analytics"
    )
    assert (target.host, target.port) == ("ch-1", 9001)
    assert target.alt_hosts == (("ch-2", 9000), ("fd00::3", 9003))
    assert target.addresses == [("ch-1", 9001), ("ch-2", 9000), ("fd00::3", 9003)]
    assert (target.user, target.password.get_secret_value()) == ("writer", "s:cret")
    assert target.database == "analytics"
    described = target.describe()
    assert described == "clickhouse://writer@ch-1:9001,ch-2:9000,[fd00::3]:9003/analytics"
    assert "s:cret" not in repr(target)
    secure = parse_clickhouse_url("clickhouses://u@ch-1,ch-2/db?verify=false")
    assert secure.addresses == [("ch-1", 9440), ("ch-2", 9440)]


def test_several_servers_are_replicas_of_the_cluster_the_settings_name() -> None:
    url = "clickhouse://u:secret@ch-1:9000,ch-2:9000/db"
    target = Settings(clickhouse_url=url, clickhouse_cluster="samt124").clickhouse
    assert (target.cluster, target.addresses) == ("samt124", [("ch-1", 9000), ("ch-2", 9000)])
    with pytest.raises(ValueError, match="names 2 servers: they are replicas") as refused:
        Settings(clickhouse_url=url, clickhouse_cluster=None).clickhouse  # noqa: B018
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("clickhouse://ch-1:9000,,ch-2/db", "'' in the ClickHouse URL is not a server"),
        ("clickhouse://ch-1:9000,ch-2:x/db", "'ch-2:x' in the ClickHouse URL is not a server"),
        ("clickhouse://ch-1:70000/db", "'ch-1:70000' in the ClickHouse URL is not a server"),
        ("clickhouse://ch-1:/db", "'ch-1:' in the ClickHouse URL is not a server"),
        ("clickhouse://u:p@ch-1:9000,ch-1:9000/db", "names ch-1:9000 twice"),
    ],
)
def test_a_server_list_samt124_cannot_use_is_refused_saying_why(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_clickhouse_url(url)
    assert ":p@" not in str(refused.value)


def test_no_url_means_the_embedded_engine_in_the_home_directory(tmp_path: Path) -> None:
    target = Settings(home=tmp_path, clickhouse_url=None).clickhouse
    assert (target.engine, target.path) == ("chdb", tmp_path / "chdb")


def test_a_server_error_is_one_line_with_a_hint_for_tls_mistakes() -> None:
    from consumers.clickhouse.engine import server_trouble

    untrusted = (
        "Code: 210. [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"
        " certificate in certificate chain (_ssl.c:1006) (localhost:9440)"
    )
    assert server_trouble(untrusted).endswith(
        "(localhost:9440) (the server's certificate is not trusted here: add ?ca_certs=PATH,"
        " the authority that signed it, to SAMT124_CLICKHOUSE_URL)"
    )
    refused = "Code: 60. DB::Exception: Table samt124.x doesn't exist.\n\nStack trace:\n0. ..."
    assert server_trouble(refused) == "Code: 60. DB::Exception: Table samt124.x doesn't exist."
    reset = "Code: 210. Connection reset by peer (localhost:9440)"
    assert server_trouble(reset, secure=False).endswith(
        "(if that is the server's TLS port, the URL starts with clickhouses://)"
    )
    assert server_trouble(reset, secure=True) == reset


def test_an_empty_bootstrap_means_the_local_broker() -> None:
    from samt124.settings import Settings

    local = Settings(kafka_bootstrap="", local_kafka_port=19092)
    assert local.uses_local_kafka
    assert local.bootstrap == "127.0.0.1:19092"
    assert not Settings(kafka_bootstrap="kafka:9092").uses_local_kafka
