"""One router per resource: batches, a batch's files, health."""
