# The Governor image: `governor serve` by default; the same image runs `governor worker`.
FROM python:3.11-slim
WORKDIR /opt/governor
COPY pyproject.toml README.md ./
COPY governor ./governor
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 governor
USER governor
ENV GOVERNOR_HOME=/home/governor/.governor
EXPOSE 8081
CMD ["governor", "serve", "--host", "0.0.0.0", "--port", "8081"]
