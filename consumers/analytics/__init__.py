"""What analysts read: the reports over ClickHouse, and their HTML rendering."""
