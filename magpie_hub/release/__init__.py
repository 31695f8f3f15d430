"""Releasing a build: the dataset card, the release tree, the Hub push and `publish`."""
