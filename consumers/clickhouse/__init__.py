"""ClickHouse access for samt124: the engines (server, chdb) and the schema migrations."""

from consumers.clickhouse.engine import Engine, EngineBusy, EngineError, connect, opened

__all__ = ["Engine", "EngineBusy", "EngineError", "connect", "opened"]
