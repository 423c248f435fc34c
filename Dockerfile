FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MULTIMODAL_DATA_DIR=/data
# Run as a non-root user. /data (uploads, media, static, embedded defaults) and /models (model caches) are
# created here owned by it: an empty named volume mounted there takes this ownership on first use.
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data /models \
    && chown app:app /data /models
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
USER app
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn searchsite.wsgi --bind 0.0.0.0:8000 --workers 2 --timeout 120"]
