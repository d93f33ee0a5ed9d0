"""The heart of Interlock: incidents, events and their rules. Pure: no I/O, no framework."""
