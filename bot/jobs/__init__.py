"""The job machinery: the durable store, the job runner, the outbox."""
