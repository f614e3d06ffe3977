"""The clock (APScheduler) and its jobs: dispatch ticks, due reminders, buyer calls."""
