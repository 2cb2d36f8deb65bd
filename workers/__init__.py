"""Celery tasks: thin wrappers that take ids, call one service and return."""
