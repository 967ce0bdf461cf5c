# streamal daemon image: docker build -t streamal . && docker run -p 9108:9108 streamal
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamal ./streamal
COPY connectors ./connectors
RUN pip install --no-cache-dir ".[kafka]" && useradd --create-home streamal
USER streamal
WORKDIR /home/streamal

EXPOSE 9108
# inside a container the metrics endpoint must listen beyond loopback to be scraped
ENTRYPOINT ["streamal", "run", "--metrics-host", "0.0.0.0"]
