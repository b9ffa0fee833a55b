"""Accounts: users, roles, the area a user may see, API tokens and password hashing."""
