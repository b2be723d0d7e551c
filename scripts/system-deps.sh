#!/usr/bin/env bash
# System packages samt124's tests use: Debian's ClickHouse server, ZooKeeper (coordination of the
# local ClickHouse cluster), docker-compose (to validate docker-compose.yml), chromium (to render
# the demo's HTML report and the dashboard headless) and prometheus (its promtool tests the alert
# rules and parses the dashboards' queries). Installed only
# when missing and when we may (root with apt-get).
set -euo pipefail
missing=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
echo "installed: ${missing[*]}"
