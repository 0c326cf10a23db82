"""``huegis users`` and ``huegis apikey``: accounts, roles and API keys (issue: auth)."""
