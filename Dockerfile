# One image for samt124's worker, sink, lag exporter, API and dashboard. The development tooling in devtools/
# (demo, local services, benchmarks) is not copied, so `pip install .` leaves it out.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SAMT124_HOME=/var/lib/samt124
WORKDIR /opt/samt124
COPY pyproject.toml README.md ./
COPY samt124 ./samt124
COPY producers ./producers
COPY streams ./streams
COPY consumers ./consumers
COPY schemas ./schemas
COPY api ./api
COPY dashboard ./dashboard
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/samt124 --create-home samt124
USER samt124
ENTRYPOINT ["samt124"]
CMD ["--help"]
