"""Consumer lag: offsets and Burrow-style status per group, as text, JSON or Prometheus."""
