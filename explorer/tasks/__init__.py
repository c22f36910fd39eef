"""Reasoning tasks with generators and evaluation (``explorer.tasks.prosqa``)."""
