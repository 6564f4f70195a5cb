"""Google Cloud Run jobs execution target for litestar-queues."""
