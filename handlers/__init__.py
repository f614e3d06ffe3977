"""Slack listeners and the console adapter: parse, authorise, call a service, format a reply."""
