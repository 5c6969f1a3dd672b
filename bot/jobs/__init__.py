"""The job machinery: the durable store, the worker threads, the outbox."""
