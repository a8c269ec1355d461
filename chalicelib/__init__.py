"""The image classifier's domain: everything the Chalice handlers call."""
