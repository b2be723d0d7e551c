"""``samt124 bench``: measure the pipeline beside Kafka's own tools and bare Python clients."""
