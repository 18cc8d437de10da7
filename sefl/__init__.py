"""sefl package."""
