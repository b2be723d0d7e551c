"""``samt124 api`` (the 124 service API) and ``samt124 keys`` (its API keys)."""

from __future__ import annotations

import argparse
from typing import Any

from samt124 import metrics, reach
from samt124.errors import CommandError
from samt124.settings import Settings


def register(commands: Any) -> None:
    api = commands.add_parser(
        "api",
        help="serve the 124 service API: Open311 GeoReport v2 at /open311/v2/, the bodies'"
        " work queue at /api/v1/queue, OpenAPI at /openapi.json",
    )
    api.add_argument(
        "--listen",
        type=listen_address,
        help="HOST:PORT to listen on (SAMT124_API_LISTEN, 127.0.0.1:8124)",
    )
    api.add_argument(
        "--metrics",
        type=metrics.address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics"
        " (SAMT124_METRICS_HOST, SAMT124_METRICS_PORT; default: none)",
    )
    api.set_defaults(handler=cmd_api)

    keys = commands.add_parser("keys", help="the API's keys: add, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a key and print it (once; only its hash is kept)")
    add.add_argument("name", help="who holds it, e.g. call-centre-124, samt-org-tehran")
    add.add_argument("--role", required=True, choices=("publisher", "body", "ministry"))
    add.add_argument("--body", help="body keys: the body id, e.g. samt-org:IR-23")
    add.add_argument(
        "--channel",
        help="publisher keys: the channel its requests come in on (PHONE_124, WEB_PORTAL,"
        " SAMTEMA_APP, SMS, IN_PERSON); default WEB_PORTAL",
    )
    add.set_defaults(handler=cmd_keys_add)
    listing = actions.add_parser("list", help="the keys: id, name, role, body, created, revoked")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id, or every key of a name")
    revoke.add_argument("key", help="a key id or a name")
    revoke.set_defaults(handler=cmd_keys_revoke)


def listen_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"HOST:PORT, e.g. 127.0.0.1:8124, got {text!r}")
    return host, int(port)


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    try:
        host, port = args.listen or listen_address(settings.api_listen)
    except argparse.ArgumentTypeError as problem:
        raise CommandError(f"setting SAMT124_API_LISTEN: {problem}") from None
    reach.kafka(settings)
    from api.server import serve

    print(f"samt124 api: http://{host}:{port}/open311/v2/ (OpenAPI: /openapi.json)", flush=True)
    serve(settings, host, port, metrics.where(args.metrics, settings))
    return 0


def cmd_keys_add(args: argparse.Namespace, settings: Settings) -> int:
    from api.keys import KeyProblem, KeyStore

    try:
        entry, key = KeyStore(settings.api_keys_path).add(
            args.name, args.role, body=args.body, channel=args.channel
        )
    except KeyProblem as problem:
        raise CommandError(str(problem)) from None
    print(key)
    print(
        f"key {entry.key_id} for {entry.name} ({entry.role}"
        + (f", {entry.body}" if entry.body else "")
        + "): shown once, keep it; only its hash is stored in "
        + str(settings.api_keys_path),
        flush=True,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from api.keys import KeyStore

    print(f"{'id':<12}  {'name':<24}  {'role':<9}  {'body':<20}  {'created':<25}  revoked")
    for e in KeyStore(settings.api_keys_path).entries():
        print(
            f"{e.key_id:<12}  {e.name:<24}  {e.role:<9}  {e.body or '-':<20}  {e.created:<25}"
            f"  {e.revoked or '-'}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from api.keys import KeyStore

    revoked = KeyStore(settings.api_keys_path).revoke(args.key)
    if not revoked:
        raise CommandError(f"no live key with id or name {args.key!r} (samt124 keys list)")
    for e in revoked:
        print(f"revoked {e.key_id} ({e.name})")
    return 0
