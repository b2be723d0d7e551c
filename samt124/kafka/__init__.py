"""Kafka helpers shared by the stages: topic names, admin, reading topics, explaining trouble."""
