"""What ``samt124 init`` says about an existing cluster's topics, and ``--fix``."""

from __future__ import annotations

from samt124.kafka.admin import alter_topics, inspect_topics
from samt124.kafka.topics import Difference
from samt124.settings import Settings

REPLICAS_REMEDY = (
    "add replicas with kafka-reassign-partitions (a reassignment listing three brokers per"
    " partition), or set SAMT124_REPLICATION_FACTOR to what the cluster has"
)
PARTITIONS_REMEDY = (
    "a request's events stay on the partition of its id: use the cluster's count"
    " (SAMT124_PARTITIONS) or a new SAMT124_TOPIC_NAMESPACE"
)


def check_topics(settings: Settings, *, fix: bool) -> list[Difference]:
    """Print how samt124's topics differ from its plan (altering the topic configs with
    ``fix``); return the differences left."""
    plan, found = inspect_topics(settings)
    print(
        f"kafka topics: replication factor {plan.replication_factor},"
        f" min.insync.replicas {plan.min_insync_replicas}"
    )
    if not found:
        print("kafka topics: as samt124 wants them")
        return []
    left = alter_topics(settings, found) if fix else found
    for difference in found:
        state = "fixed" if difference not in left else "differs"
        print(f"  {state}: {difference.describe()}")
    for difference in left:
        if difference.setting == "replication factor":
            print(f"  to do: {REPLICAS_REMEDY}")
            break
    for difference in left:
        if difference.setting == "partitions":
            print(f"  to do: {PARTITIONS_REMEDY}")
            break
    if left and not fix and any(difference.alterable for difference in left):
        print("  to do: `samt124 init --fix` sets the topic configs samt124 wants")
    return left
