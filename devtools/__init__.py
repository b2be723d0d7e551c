"""Development tooling, left out of the production image: demo, local services, benchmarks."""
