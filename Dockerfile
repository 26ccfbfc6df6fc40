# Restyle for a CUDA host: the bot and the engine in one container.
#   docker build -t restyle .
#   docker run --gpus all -v restyle-data:/app/data -v hf-cache:/hf -e DISCORD_TOKEN -e HF_TOKEN restyle
# The engine CLI is there too:
#   docker run --gpus all -v restyle-data:/app/data -v hf-cache:/hf --entrypoint python restyle \
#       -m engine render /app/data/photo.jpg --mode canny --prompt "an ink drawing" -o /app/data/out.png
# PyPI's Linux torch wheels bundle the CUDA runtime; the host needs the NVIDIA driver and the
# NVIDIA container toolkit.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/hf \
    RESTYLE_DATA_DIR=/app/data \
    TRANSFORMERS_VERBOSITY=error

RUN useradd --create-home --uid 1000 restyle && mkdir -p /app/data /hf && chown restyle /app/data /hf
WORKDIR /app

# Dependencies first, so code changes do not reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir -p engine bot cogs && touch engine/__init__.py bot/__init__.py cogs/__init__.py \
    && pip install "torch==2.13.0" \
    && pip install ".[fast]" \
    && pip uninstall -y restyle

COPY engine engine
COPY bot bot
COPY cogs cogs
RUN pip install --no-deps .

USER restyle
VOLUME ["/app/data", "/hf"]
CMD ["restyle-bot"]
