"""gunicorn settings for production: ``gunicorn -c deploy/gunicorn.conf.py app:app``.

Put nginx in front (deploy/nginx.conf): it serves the published snapshot itself, buffers whole
requests before passing them on, and so takes slow clients off the app's hands. gunicorn on a
public port without it is NOT safe, even with these settings: each client that trickles its
request headers holds one thread until it finishes (gunicorn reads headers with a blocking read),
so enough of them still exhaust the threads.

Why these values (measured on the 2-core machine in the README, tests/test_gunicorn_config.py):

* ``gthread`` workers, not ``sync``: a sync worker serves one connection at a time, so four
  clients sending a header line every 5 s stalled ``-w 2`` for 45 s. A gthread worker waits for a
  new connection's first bytes in its event loop (at most 5 s in a thread, then back to the loop),
  and a slow client costs one of ``threads`` threads, not the whole worker.
* ``threads = 16`` per worker: 32 slow clients before anyone waits with 2 workers, for ~1 MB of
  stack each; the app is CPU-bound and holds the GIL, so more threads buy no throughput.
* ``workers``: one per core plus one (Python runs one thread at a time per process).
* ``keepalive = 5``: idle keep-alive connections are closed after 5 s (they sit in the event
  loop, not in a thread).
* ``timeout = 30``: a worker that stops answering its heartbeat for 30 s is replaced.
* Request line and header limits well below gunicorn's defaults: the app takes no big headers.

Every value can be overridden from the environment (``GUNICORN_BIND``, ``GUNICORN_WORKERS``,
``GUNICORN_THREADS``, ``GUNICORN_TIMEOUT``, ``GUNICORN_KEEPALIVE``, ``GUNICORN_ACCESSLOG``,
``GUNICORN_LOGLEVEL``, ``GUNICORN_FORWARDED_ALLOW_IPS``) or the command line.
"""
import multiprocessing
import os


def _env(name, default):
    return os.environ.get(name) or default


bind = _env("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(_env("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(_env("GUNICORN_THREADS", 16))
timeout = int(_env("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = int(_env("GUNICORN_KEEPALIVE", 5))
# Connections per worker (idle keep-alive ones included) before it stops accepting more.
worker_connections = 1000
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Behind nginx on the same host: trust its X-Forwarded-* (the app's TRUSTED_PROXIES=1 does the same
# for its own view of the client address).
forwarded_allow_ips = _env("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = _env("GUNICORN_ACCESSLOG", None)
errorlog = "-"
loglevel = _env("GUNICORN_LOGLEVEL", "info")
