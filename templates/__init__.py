"""Jinja2 templates: emails (text + HTML, en + vi), Slack layouts and console output."""
