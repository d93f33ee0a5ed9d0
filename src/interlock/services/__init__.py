"""Use cases. They talk to ports only; bootstrap.py hands them concrete adapters."""
