"""Protocols the services depend on; adapters in store/, worker/, … implement them."""
