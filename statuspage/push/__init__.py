"""Web Push delivery, one module per part (a newcomer's map):

- ``delivery``: the RQ jobs (``fan_out``, ``send_batch``, ``resume_event``, test pushes) that turn
  an outbox event into claimed deliveries, send them and write the outcomes;
- ``retry``: the one ``RetryPolicy`` (attempts, backoff, Retry-After cap, the queue's job retry);
- ``sender``: the Web Push protocol (allow-list check, encryption, VAPID, headers, what an answer
  means) and the concurrent orchestration of a batch;
- ``transport``: the small ``Transport`` protocol between the sender and the wire;
  ``http1``: the pooled keep-alive HTTP/1.1 transport in use (an HTTP/2 one is one new class);
- ``crypto``: aes128gcm (RFC 8291) and VAPID (RFC 8292) on ``cryptography``;
- ``subscriptions`` (who may be contacted, subscribe/unsubscribe), ``keys`` (VAPID keys),
  ``settings``, ``triggers`` (per-event toggles, templates, payloads), ``reports`` (what admins see),
  ``seen`` (the service workers' shown/opened reports: per-event counts capped at sent, latency);
- ``simulator``: a real push service for tests and trials (verifies VAPID, decrypts, misbehaves
  on request).
"""
