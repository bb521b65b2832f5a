"""Consumer workers: broker batches into MongoDB, exactly once in effect."""
