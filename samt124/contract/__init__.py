"""The wire contract: Avro single-object encoding of events, and schema compatibility."""
