"""Making a build: the generate stage (distilabel tasks) and importing rows made elsewhere."""
