"""Jinja templates of the dataset card (shipped as the package `magpie_hub_cards`)."""
