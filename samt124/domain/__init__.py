"""The domain core: events, the request lifecycle, SLA clocks, referral rules, the working
calendar, Tehran time, and their data files. Imports nothing from Kafka, ClickHouse or the CLI."""
