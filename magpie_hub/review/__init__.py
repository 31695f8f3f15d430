"""Human review in Argilla: dataset settings, push/status/pull, the `reviewed` view."""
