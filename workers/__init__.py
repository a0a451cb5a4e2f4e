"""A compute node's Celery workers: each task takes one diagnosis request from event to sealed result."""
