"""The shipper: tail files, parse lines into records, publish confirmed batches."""
