"""The ClickHouse sink: events as rows, loaded in batches, offsets committed after storage."""
