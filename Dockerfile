# streamal daemon image:
#   docker build -t streamal . && docker run -p 9108:9108 -v streamal-state:/home/streamal/streamal-out streamal
# (examples/compose.yaml runs it with Kafka, Prometheus, Grafana and Label Studio)
FROM python:3.11.11-slim-bookworm

RUN useradd --create-home --uid 10001 streamal
WORKDIR /app

# the dependencies first, in a layer of their own: a code change does not reinstall them
COPY pyproject.toml README.md ./
RUN mkdir -p streamal/strategies connectors/kafka/clients connectors/labelstudio connectors/quix \
    && echo '__version__ = "0"' > streamal/__init__.py \
    && pip install --no-cache-dir ".[kafka,confluent,http]" \
    && pip uninstall --yes streamal \
    && rm -rf streamal connectors

COPY streamal ./streamal
COPY connectors ./connectors
RUN pip install --no-cache-dir --no-deps ".[kafka,confluent,http]"

USER streamal
WORKDIR /home/streamal
# outputs, the checkpoint and its key live here: keep them across containers
RUN mkdir -p streamal-out
VOLUME ["/home/streamal/streamal-out"]

EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]
# inside a container the endpoint must listen beyond loopback to be scraped
ENTRYPOINT ["streamal", "run", "--metrics-host", "0.0.0.0"]
