"""The Magpie method's prompts: chat templates, the pre-query, system prompts, URIAL."""
